//! The `corral` binary.

fn main() {
    eprintln!("corral: the master and agent are not built yet; see README.md");
    std::process::exit(2);
}
