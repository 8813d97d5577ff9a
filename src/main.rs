fn main() -> std::process::ExitCode {
    keys::cli::main()
}
