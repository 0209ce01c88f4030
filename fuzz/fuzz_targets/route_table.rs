fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::route_table(data);
    });
}
