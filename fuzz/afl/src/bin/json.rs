//! AFL++ driver: `Target::Json`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Json);
}
