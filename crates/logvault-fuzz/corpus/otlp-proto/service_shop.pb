
Z


service.name
shop><	═UїQrЖ	INFO*
hello2
order.id*Jлллллллллллллллл