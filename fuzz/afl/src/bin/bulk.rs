//! AFL++ driver: `Target::Bulk`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Bulk);
}
