#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    integration_host::fuzzing::plugin_manifest(data);
});
