use super::*;
use metalboot_spec::log::{LogBatch, LOG_LINES_KEPT};

fn installing(s: &Store, name: &str) -> String {
    s.arm(name, "test").unwrap();
    let tok = new_token();
    s.start_boot(name, &hash_token(&tok), "image", "bios").unwrap();
    tok
}

fn batch(lines: &[&str]) -> LogBatch {
    LogBatch { lines: lines.iter().map(|l| l.to_string()).collect(), dropped: 0 }
}

#[test]
fn log_lines_need_the_install_token_and_come_back_in_pages() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let tok = installing(&s, "web1");
    assert_eq!(s.append_log("web1", "wrong", &batch(&["x"])).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.append_log("web2", &tok, &batch(&["x"])).unwrap(), Err(TokenError::Invalid));
    assert_eq!(s.append_log("web1", &tok, &batch(&["one", "two\u{7}"])).unwrap(), Ok(2));
    let b = LogBatch { lines: vec!["three".into()], dropped: 7 };
    assert_eq!(s.append_log("web1", &tok, &b).unwrap(), Ok(1));
    let all = s.log("web1", 0, 100).unwrap();
    let text: Vec<_> = all.lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(
        text,
        ["one", "two\u{fffd}", "[metalboot: 7 earlier line(s) could not be sent and were dropped]", "three"]
    );
    assert_eq!(all.next, all.lines[3].id);
    let rest = s.log("web1", all.lines[1].id, 1).unwrap();
    assert_eq!((rest.lines.len(), rest.next), (1, all.lines[2].id));
    let none = s.log("web1", all.next, 10).unwrap();
    assert!(none.lines.is_empty() && none.next == all.next);
    assert!(s.log("web2", 0, 10).unwrap().lines.is_empty());
}

#[test]
fn only_the_last_lines_are_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let tok = installing(&s, "a");
    let lines: Vec<String> = (0..LOG_LINES_KEPT + 20).map(|i| format!("line {i}")).collect();
    for chunk in lines.chunks(500) {
        let b = LogBatch { lines: chunk.to_vec(), dropped: 0 };
        s.append_log("a", &tok, &b).unwrap().unwrap();
    }
    let kept = s.log("a", 0, LOG_LINES_KEPT + 100).unwrap().lines;
    assert_eq!(kept.len(), LOG_LINES_KEPT);
    assert_eq!(kept[0].line, "line 20");
}

#[test]
fn a_failure_puts_the_logs_tail_on_the_timeline_and_ends_the_log() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let tok = installing(&s, "a");
    let lines: Vec<String> = (0..40).map(|i| format!("console {i}")).collect();
    s.append_log("a", &tok, &LogBatch { lines, dropped: 0 }).unwrap().unwrap();
    let ev = ProgressEvent::new("select-disk".parse().unwrap(), EventStatus::Running, "choosing");
    let r = s.record_event("a", &tok, &ev).unwrap().unwrap();
    let p = r.record.progress.expect("progress while installing");
    assert_eq!((p.step.as_deref(), p.message.as_str()), (Some("select-disk"), "choosing"));
    let ev = ProgressEvent::new("select-disk".parse().unwrap(), EventStatus::Failed, "2 disks match");
    assert!(s.record_event("a", &tok, &ev).unwrap().unwrap().became_failed);
    let tail = s.timeline("a").unwrap().into_iter().find(|e| e.kind == "log").expect("the tail on the timeline");
    assert!(tail.message.starts_with("installer log, last 25 line(s):\nconsole 15\n"), "{}", tail.message);
    assert!(tail.message.ends_with("console 39"), "{}", tail.message);
    // the install is over: its token sends nothing more, and a failed host shows no progress
    assert_eq!(s.append_log("a", &tok, &batch(&["late"])).unwrap(), Err(TokenError::Invalid));
    assert!(s.get("a").unwrap().progress.is_none());
    // a new install shows no progress and no log tail of the old one
    assert_eq!(s.log_tail("a", 5).unwrap().len(), 5);
    std::thread::sleep(std::time::Duration::from_millis(5));
    installing(&s, "a");
    assert!(s.get("a").unwrap().progress.is_none());
    assert!(s.log_tail("a", 5).unwrap().is_empty());
    assert_eq!(s.log("a", 0, 100).unwrap().lines.len(), 40, "the whole log stays for hosts logs");
}
