//! AFL++ driver: `Target::Control`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Control);
}
