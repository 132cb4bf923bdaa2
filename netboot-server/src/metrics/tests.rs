use super::*;
use std::time::Duration;

#[test]
fn counters_add_up_by_label() {
    let m = Metrics::default();
    m.dhcp("discover", "offer");
    m.dhcp("discover", "offer");
    m.dhcp("request", "ack");
    m.tftp("sent", 1000);
    m.tftp("not_found", 0);
    m.tftp("sent", 24);
    m.http("/assets/{name}", 200, Some(4096));
    m.http("/assets/{name}", 200, None);
    m.http("/boot.ipxe", 403, Some(10));
    m.install("vm1", "installed");
    let s = m.snapshot();
    assert_eq!(s.dhcp[&("discover", "offer")], 2);
    assert_eq!(s.dhcp[&("request", "ack")], 1);
    assert_eq!((s.tftp["sent"], s.tftp["not_found"], s.tftp_bytes), (2, 1, 1024));
    assert_eq!(s.http[&("/assets/{name}".to_string(), 200)], 2);
    assert_eq!(s.http_bytes, 4106);
    assert_eq!((s.installs.get("installed"), s.installs.get("failed")), (Some(&1), None));
}

#[test]
fn a_step_is_timed_from_its_first_event_to_done_or_failed() {
    let m = Metrics::default();
    let t0 = Instant::now();
    m.step_at("vm1", "unpack", false, t0);
    m.step_at("vm1", "unpack", false, t0 + Duration::from_secs(20));
    m.step_at("vm2", "unpack", false, t0 + Duration::from_secs(1));
    m.step_at("vm1", "unpack", true, t0 + Duration::from_secs(45));
    m.step_at("vm2", "unpack", true, t0 + Duration::from_secs(3));
    // done without a running event: seen to take no time
    m.step_at("vm1", "report", true, t0 + Duration::from_secs(50));
    let s = m.snapshot();
    let h = &s.steps["unpack"];
    assert_eq!((h.count, h.sum), (2, 47.0));
    // 2 s in the 5 s bucket, 45 s in the 60 s one
    assert_eq!(h.buckets, [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(s.steps["report"].buckets[0], 1);
    // the clock of a finished step is gone: a new run starts afresh
    assert!(m.step_started.lock().unwrap().is_empty());
    // a step never finished stops with the install: not counted later
    m.step_at("vm1", "mkfs", false, t0);
    m.install("vm1", "failed");
    m.step_at("vm1", "mkfs", false, t0 + Duration::from_secs(900));
    m.step_at("vm1", "mkfs", true, t0 + Duration::from_secs(901));
    assert_eq!(m.snapshot().steps["mkfs"].sum, 1.0);
}

#[test]
fn the_text_format_has_help_type_cumulative_buckets_and_escaped_labels() {
    let m = Metrics::default();
    let t0 = Instant::now();
    m.step_at("vm1", "unpack", false, t0);
    m.step_at("vm1", "unpack", true, t0 + Duration::from_millis(2500));
    m.http("/odd\"route\\", 404, Some(3));
    let mut s = m.snapshot();
    s.hosts.insert("installed".into(), 2);
    let text = render(&s);
    assert!(text.contains("# TYPE metalboot_install_step_duration_seconds histogram\n"), "{text}");
    assert!(text.contains("metalboot_install_step_duration_seconds_bucket{step=\"unpack\",le=\"1\"} 0\n"), "{text}");
    assert!(text.contains("metalboot_install_step_duration_seconds_bucket{step=\"unpack\",le=\"3600\"} 1\n"), "{text}");
    assert!(text.contains("metalboot_install_step_duration_seconds_bucket{step=\"unpack\",le=\"+Inf\"} 1\n"), "{text}");
    assert!(text.contains("metalboot_install_step_duration_seconds_sum{step=\"unpack\"} 2.5\n"), "{text}");
    assert!(text.contains("metalboot_http_requests_total{route=\"/odd\\\"route\\\\\",code=\"404\"} 1\n"), "{text}");
    assert!(text.contains("metalboot_installs_total{result=\"failed\"} 0\n"), "{text}");
    assert!(text.contains("metalboot_hosts{state=\"installed\"} 2\n"), "{text}");
}
