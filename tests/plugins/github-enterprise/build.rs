//! Builds the github connector as a GitHub Enterprise Server deployment
//! would, with its API host set to where the tests' fake provider listens.

fn main() {
    println!("cargo:rustc-env=GITHUB_API_HOST=127.0.0.1");
}
