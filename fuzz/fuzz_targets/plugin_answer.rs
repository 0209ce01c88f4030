fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::plugin_answer(data);
    });
}
