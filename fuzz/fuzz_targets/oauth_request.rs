fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::oauth_request(data);
    });
}
