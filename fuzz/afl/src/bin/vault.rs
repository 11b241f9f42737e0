//! AFL++ driver: `Target::Vault`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Vault);
}
