//! AFL++ driver: `Target::Csv`.

fn main() {
    logvault_afl::main(logvault_afl::Target::Csv);
}
