//! Guides as their readers follow them: the code blocks of a Markdown page.

/// The code blocks of a Markdown text: (language, text), in order; a block indented under a
/// list item counts too (its indentation taken off).
pub fn code_blocks(doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    // The open block: its language, its text so far, and the indentation of its fence.
    let mut open: Option<(String, String, usize)> = None;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_owned(), String::new(), indent)),
            (Some(_), Some("")) => {
                let (lang, text, _) = open.take().unwrap();
                blocks.push((lang, text));
            }
            (Some((_, text, fence)), _) => {
                let cut = indent.min(*fence);
                text.push_str(&line[cut..]);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    blocks
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a guide's commands, gathered in `script`, in one `bash -euo pipefail -x` (no standard
/// input, no configuration file from the test's environment), with what `adjust` adds (the
/// folder, the environment); panics when it takes longer than `limit`.
pub async fn run_guide(
    script: &std::path::Path,
    adjust: impl FnOnce(&mut std::process::Command) + Send + 'static,
    limit: std::time::Duration,
) -> std::process::Output {
    let script = script.to_owned();
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-euo")
            .arg("pipefail")
            .arg("-x")
            .arg(&script)
            .env_remove("INTEGRATION_HOST_CONFIG")
            .stdin(std::process::Stdio::null());
        adjust(&mut cmd);
        cmd.output().expect("run bash")
    });
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("the guide did not run within {limit:?}"))
        .expect("the guide's thread")
}
