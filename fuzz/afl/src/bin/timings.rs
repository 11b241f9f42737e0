//! AFL++ driver: `Target::Timings`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Timings);
}
