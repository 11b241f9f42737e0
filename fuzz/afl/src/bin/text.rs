//! AFL++ driver: `Target::Text`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Text);
}
