//! AFL++ driver: `Target::Identities`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Identities);
}
