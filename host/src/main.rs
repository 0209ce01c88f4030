fn main() -> std::process::ExitCode {
    integration_host::cli::main()
}
