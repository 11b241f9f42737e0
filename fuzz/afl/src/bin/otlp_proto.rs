//! AFL++ driver: `Target::OtlpProto`.

fn main() {
    logvault_afl::main(logvault_afl::Target::OtlpProto);
}
