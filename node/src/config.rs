//! `nexus node start --config FILE`: a TOML file whose keys are the command's long flags,
//! so that an operator runs the daemon (e.g. under systemd) with one file. The file's
//! settings become flags placed before those of the command line, which win.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// `args` (the process's, program name first) with the settings of the file named by
/// `--config` added, if `args` start a node with one.
pub(crate) fn expand(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let is_start = args
        .get(1..3)
        .is_some_and(|a| a[0] == "node" && a[1] == "start");
    let Some(at) = args.iter().position(|a| a == "--config") else {
        return Ok(args);
    };
    let Some(file) = args.get(at + 1).filter(|_| is_start) else {
        return Ok(args);
    };
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str()?.strip_prefix("--").map(str::to_string))
        .collect();
    let settings = flags(Path::new(file), &given)?;
    let mut expanded = args[..3].to_vec();
    expanded.extend(settings);
    expanded.extend_from_slice(&args[3..]);
    Ok(expanded)
}

/// The flags the settings in `file` stand for, leaving out those in `given`.
fn flags(file: &Path, given: &[String]) -> Result<Vec<OsString>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        if key == "config" || given.contains(&key) {
            continue;
        }
        let flag = OsString::from(format!("--{key}"));
        let values = match value {
            toml::Value::Array(items) => items,
            toml::Value::Boolean(true) => {
                out.push(flag);
                continue;
            }
            toml::Value::Boolean(false) => continue,
            single => vec![single],
        };
        for item in values {
            let text = match item {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!(
                    "{}: `{key}` must be a string, a number, true or false, or a list of those, not a {}",
                    file.display(),
                    other.type_str()
                ),
            };
            out.push(flag.clone());
            out.push(text.into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn settings_become_flags_and_the_command_line_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "data-dir = \"/var/lib/nexus\"\napi = \"127.0.0.1:7100\"\nvalidator = true\n\
             bootstrap = [\"/dns4/a/tcp/1\", \"/dns4/b/tcp/1\"]\nround-timeout-ms = 500\n\
             fault = false\n",
        )
        .expect("write");
        let path = file.to_str().expect("utf8");
        let expanded = expand(args(&[
            "nexus",
            "node",
            "start",
            "--config",
            path,
            "--api",
            "127.0.0.1:9",
        ]))
        .expect("expand");
        let line: Vec<&str> = expanded.iter().map(|a| a.to_str().expect("utf8")).collect();
        assert_eq!(
            line,
            [
                "nexus",
                "node",
                "start",
                "--bootstrap",
                "/dns4/a/tcp/1",
                "--bootstrap",
                "/dns4/b/tcp/1",
                "--data-dir",
                "/var/lib/nexus",
                "--round-timeout-ms",
                "500",
                "--validator",
                "--config",
                path,
                "--api",
                "127.0.0.1:9",
            ]
        );
        // Other commands are left alone; a bad file is an error that names it.
        let other = args(&["nexus", "status", "--config", path]);
        assert_eq!(expand(other.clone()).expect("untouched"), other);
        std::fs::write(&file, "data-dir = [").expect("write");
        let err =
            expand(args(&["nexus", "node", "start", "--config", path])).expect_err("bad TOML");
        assert!(format!("{err:#}").contains("is not valid TOML"), "{err:#}");
        std::fs::write(&file, "listen = { a = 1 }").expect("write");
        let err = expand(args(&["nexus", "node", "start", "--config", path])).expect_err("a table");
        assert!(format!("{err:#}").contains("`listen` must be"), "{err:#}");
    }
}
