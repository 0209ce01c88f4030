fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::search_criteria(data);
    });
}
