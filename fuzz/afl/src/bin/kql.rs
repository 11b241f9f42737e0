//! AFL++ driver: `Target::Kql`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Kql);
}
