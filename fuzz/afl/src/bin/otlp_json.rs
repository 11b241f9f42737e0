//! AFL++ driver: `Target::OtlpJson`.

fn main() {
    logvault_afl::main(logvault_afl::Target::OtlpJson);
}
