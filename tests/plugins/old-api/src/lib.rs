//! An observer built against API 0.9.0, which the host does not support.

wit_bindgen::generate!({
    inline: "
        package integration-host:plugin@0.9.0;
        interface observer {
            on-event: func(name: string) -> bool;
        }
        world old-observer {
            export observer;
        }
    ",
});

struct Old;

impl exports::integration_host::plugin::observer::Guest for Old {
    fn on_event(_name: String) -> bool {
        true
    }
}

export!(Old);
