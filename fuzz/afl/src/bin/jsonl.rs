//! AFL++ driver: `Target::JsonLines`.

fn main() {
    logvault_afl::main(logvault_afl::Target::JsonLines);
}
