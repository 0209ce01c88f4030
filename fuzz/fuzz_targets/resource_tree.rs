fn main() {
    afl::fuzz!(|data: &[u8]| {
        integration_host::fuzzing::resource_tree(data);
    });
}
