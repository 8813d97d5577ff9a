//! The `keys` binary: everything is in the library; `cli::main` parses the command
//! line, runs the command and chooses the exit code.

fn main() -> std::process::ExitCode {
    keys::cli::main()
}
