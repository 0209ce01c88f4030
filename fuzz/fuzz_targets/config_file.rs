fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::config_file(data);
    });
}
