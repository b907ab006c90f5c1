//! End-to-end: the rvsadm binary against a tiny fake rvsd on a temporary
//! unix socket that checks each request line and answers canned JSON.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

fn sock_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rvsadm-cli-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A fake daemon: for each (expected request, canned answer) pair, reads a
/// line, checks it (as JSON values, so key order does not matter), answers.
fn fake(path: &PathBuf, script: Vec<(&'static str, &'static str)>) -> JoinHandle<()> {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        for (want, answer) in script {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let got: serde_json::Value = serde_json::from_str(&line).unwrap();
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(got, want, "request line: {line}");
            // Canned answers may be written over several lines for
            // readability; the wire carries one line.
            let answer: serde_json::Value = serde_json::from_str(answer).unwrap();
            w.write_all(answer.to_string().as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
        }
        let mut rest = String::new();
        assert_eq!(
            r.read_line(&mut rest).unwrap(),
            0,
            "unexpected extra request {rest}"
        );
    })
}

fn rvsadm(args: &[&str], sock_env: Option<&PathBuf>, stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvsadm"));
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match sock_env {
        Some(p) => c.env("RVS_SOCK", p),
        None => c.env_remove("RVS_SOCK"),
    };
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn add_service_sends_the_request() {
    let p = sock_path("add");
    let h = fake(
        &p,
        vec![(
            r#"{"v":1,"op":"add-service","service":{"protocol":"tcp","address":"10.0.0.1","port":80,"scheduler":"rr","persistent":{"timeout":360,"netmask":24}}}"#,
            r#"{"v":1,"result":"ok"}"#,
        )],
    );
    let sock = p.to_str().unwrap();
    let o = rvsadm(
        &[
            "-A",
            "-t",
            "10.0.0.1:80",
            "-s",
            "rr",
            "-p",
            "-M",
            "255.255.255.0",
            "--sock",
            sock,
        ],
        None,
        "",
    );
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

#[test]
fn list_through_env_socket() {
    let p = sock_path("list");
    let h = fake(
        &p,
        vec![
            (
                r#"{"v":1,"op":"version"}"#,
                r#"{"v":1,"result":"version","version":{"rvs":"0.1.0","ipvs":"1.2.1","conn_tab_size":4096,"protocol":1}}"#,
            ),
            (
                r#"{"v":1,"op":"list-services"}"#,
                r#"{"v":1,"result":"services","services":[
                    {"protocol":"udp","address":"192.168.1.100","port":53,"scheduler":"rr","persistent":{"timeout":360,"netmask":24},"dests":[]},
                    {"protocol":"tcp","address":"192.168.1.100","port":80,"scheduler":"wlc","dests":[
                        {"address":"10.0.0.1","port":80,"forward":{"method":"masq"},"weight":1,"active_conns":3,"inactive_conns":12}]}]}"#,
            ),
        ],
    );
    let o = rvsadm(&["-Ln"], Some(&p), "");
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  192.168.1.100:80 wlc\n  \
         -> 10.0.0.1:80                  Masq    1      3          12        \n\
         UDP  192.168.1.100:53 rr persistent 360 mask 255.255.255.0\n"
    );
}

#[test]
fn daemon_errors_are_printed_with_ipvsadm_exit_codes() {
    let p = sock_path("err");
    let h = fake(
        &p,
        vec![(
            r#"{"v":1,"op":"delete-service","service":{"protocol":"udp","address":"2001:db8::1","port":53}}"#,
            r#"{"v":1,"result":"error","message":"No such service"}"#,
        )],
    );
    let o = rvsadm(&["-D", "-u", "[2001:db8::1]:53"], Some(&p), "");
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "No such service\n");

    let p = sock_path("err1");
    let h = fake(
        &p,
        vec![(
            r#"{"v":1,"op":"list-services","service":{"protocol":"tcp","address":"10.9.9.9","port":80}}"#,
            r#"{"v":1,"result":"error","message":"No such service"}"#,
        )],
    );
    let o = rvsadm(&["-L", "-n", "-t", "10.9.9.9:80"], Some(&p), "");
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "No such service\n");
}

#[test]
fn restore_sends_one_transaction() {
    let p = sock_path("restore");
    // No save first: the changes go as they are, for rvsd to apply to its
    // rules as they are then.
    let h = fake(
        &p,
        vec![(
            r#"{"v":1,"op":"transaction","changes":[
                {"op":"add-service","service":{"protocol":"tcp","address":"10.0.0.1","port":80,"scheduler":"wlc"}},
                {"op":"add-dest","service":{"protocol":"tcp","address":"10.0.0.1","port":80},
                 "dest":{"address":"10.1.0.1","port":80,"forward":{"method":"masq"},"weight":1,"u_threshold":0,"l_threshold":0}},
                {"op":"add-dest","service":{"protocol":"tcp","address":"10.0.0.1","port":80},
                 "dest":{"address":"10.1.0.2","port":8080,"forward":{"method":"masq"},"weight":3,"u_threshold":0,"l_threshold":0}},
                {"op":"set-timeouts","timeouts":{"tcp":900,"tcpfin":0,"udp":0}}]}"#,
            r#"{"v":1,"result":"ok"}"#,
        )],
    );
    // As written by a real ipvsadm-save, with comments and the program name.
    let input = "# saved by ipvsadm-save\n\
                 -A -t 10.0.0.1:80 -s wlc\n\
                 -a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n\
                 \n\
                 ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m -w 3   # second\n\
                 --set 900 0 0\n";
    let o = rvsadm(&["-R"], Some(&p), input);
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn restore_with_a_bad_line_changes_nothing() {
    let p = sock_path("restore-bad");
    // A line that does not parse: nothing is sent at all.
    let h = fake(&p, vec![]);
    let o = rvsadm(
        &["-R"],
        Some(&p),
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 2147483648\n",
    );
    drop(std::os::unix::net::UnixStream::connect(&p));
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "illegal weight specified\nrvsadm: restore aborted at line 2; nothing was changed\n"
    );

    // A change rvsd refuses: the line it came from is named.
    let p = sock_path("restore-dup");
    let h = fake(
        &p,
        vec![(
            r#"{"v":1,"op":"transaction","changes":[
                {"op":"clear"},
                {"op":"add-service","service":{"protocol":"tcp","address":"10.0.0.1","port":80,"scheduler":"wlc"}}]}"#,
            r#"{"v":1,"result":"error","message":"Service already exists","change":1}"#,
        )],
    );
    let o = rvsadm(
        &["-R"],
        Some(&p),
        "# first\n-C\n\n-A -t 10.0.0.1:80 -s wlc\n",
    );
    h.join().unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        text(&o.stderr),
        "Service already exists\nrvsadm: restore aborted at line 4; nothing was changed\n"
    );
}

#[test]
fn rvsd_not_running() {
    let p = sock_path("absent");
    let o = rvsadm(&["-C", "--sock", p.to_str().unwrap()], None, "");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        format!(
            "rvsadm: cannot connect to rvsd at {}: is rvsd running?\n",
            p.display()
        )
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_arguments_never_connect() {
    let p = sock_path("never");
    let l = UnixListener::bind(&p).unwrap();
    l.set_nonblocking(true).unwrap();
    for (args, code, msg) in [
        (
            vec!["-n", "-L"],
            255,
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n",
        ),
        (
            vec!["-A", "-t", "10.0.0.1:80", "-w", "3"],
            2,
            "Illegal 'weight' option with the 'add-service' command\n",
        ),
        (
            vec!["-a", "-t", "10.0.0.1:80"],
            2,
            "You need to supply the 'real-server' option for the 'add-server' command\n",
        ),
        (vec!["-L", "--bogus"], 255, "--bogus: unknown option\n"),
        (
            vec!["-A", "-f", "0"],
            2,
            "invalid fwmark value `0' specified\n",
        ),
        (
            vec!["--add-mark", "-t", "10.0.0.1:80"],
            2,
            "--add-mark needs -f MARK\n",
        ),
    ] {
        let o = rvsadm(&args, Some(&p), "");
        assert_eq!(o.status.code(), Some(code), "{args:?}");
        assert_eq!(text(&o.stderr), msg, "{args:?}");
    }
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("rvsadm connected: {other:?}"),
    }
    let _ = std::fs::remove_file(&p);
}

#[test]
fn help_needs_no_daemon() {
    let o = rvsadm(&["-h"], None, "");
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("Usage:"));
    let o = rvsadm(&["-v"], None, "");
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).starts_with("rvsadm v"));
}
