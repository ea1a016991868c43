//! The `promlite` binary: thin; parses flags and hands over to the library.

fn main() {
    println!("promlite {}", env!("CARGO_PKG_VERSION"));
}
