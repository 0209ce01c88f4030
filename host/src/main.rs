/// mimalloc: the request path allocates many small, short-lived values across threads
/// (a request's nonce is freed by the batch writer), where glibc's allocator spent about a
/// seventh of the server's time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    integration_host::cli::main()
}
