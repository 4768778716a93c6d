//! `faultserver DIR`: serve the files of DIR with the faults of the library,
//! printing the port on stdout, until killed.

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: faultserver DIR");
        std::process::exit(2);
    };
    let mut files = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                files.insert(e.file_name().to_string_lossy().into_owned(), b);
            }
        }
    }
    match faultserver::Server::start(files) {
        Ok(s) => {
            println!("{}", s.port);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Err(e) => {
            eprintln!("faultserver: {e}");
            std::process::exit(1);
        }
    }
}
