//! AFL++ driver: `Target::Wal`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Wal);
}
