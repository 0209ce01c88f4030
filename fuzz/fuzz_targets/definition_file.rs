fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::definition_file(data);
    });
}
