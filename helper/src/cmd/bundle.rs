//! `onramp bundle create|verify|list|unpack`: everything an install needs,
//! for a machine with no network, in one directory or one `.tar.zst`, in
//! the layout `--from` reads (see `ship` for what it holds and
//! `ship::bundle` for the index and archive). `create` fetches what URLs
//! name through the download engine into the bundle itself, so a killed
//! `create` resumes where it stopped.

use super::args::{self, Choice, Command, Fetch, Parser, Stack};
use super::trusted_keys;
use crate::download::Cache;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::{self, Kind};
use crate::out;
use crate::ship::bundle::{
    Entry, INCOMPLETE, INDEX, Index, check_manifest, files_below, is_archive, read_index, unpack,
    verify, write_archive,
};
use crate::ship::{self, installer::Bake, url_wants};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `onramp bundle create|verify|list|unpack`.
pub struct Bundle {
    words: Vec<String>,
    stack: Stack,
    choice: Choice,
    targets: Vec<String>,
    helpers: Vec<String>,
    output: Option<PathBuf>,
    allow_unpinned_catalog: bool,
    fetch: Fetch,
}

const TARGET: args::Opt = args::Opt {
    name: "--target",
    value: "T",
    help: "(create) carry what this target needs (repeatable; default: this machine's)",
};

impl Command for Bundle {
    const NAME: &'static str = "bundle";
    const USAGE: &'static str = "create --manifest FILE|URL [--target T]... [--gpu B] [--profile P] [--helper TARGET=PATH]... -o FILE.tar.zst|DIR | verify FILE|DIR | list FILE|DIR | unpack FILE -o DIR";
    const ABOUT: &'static str = "Make, check, list or unpack an air-gapped bundle: install.sh, the helpers, the manifest (and its signature), every file it names, every artifact and worker source fetched by URL (a --manifest https:// URL: its signature checked first, and what it names fetched from beside it; every variant for each --target, default this machine's; only those chosen with --gpu/--profile), and index.json (every file's size and sha256). create fetches through the download engine and resumes when run again; verify checks every byte, that nothing is missing or added, the signature (with a trusted key) and that every artifact is there; install.sh --from FILE|DIR installs from it with no network.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Bundle {
            stack: Stack::parse(p)?,
            choice: Choice::parse(p)?,
            targets: p.values(&TARGET)?,
            helpers: p.values(&args::HELPER)?,
            output: p.path(&args::OUTPUT)?,
            allow_unpinned_catalog: p.switch(&args::ALLOW_UNPINNED_CATALOG),
            fetch: Fetch::parse(p)?,
            words: p.rest()?,
        })
    }
    fn run(self) -> Result<i32> {
        bundle(&self)
    }
}

fn bundle(f: &Bundle) -> Result<i32> {
    let want = match f.words.first().map(String::as_str) {
        Some("create") => 1,
        Some("verify" | "list" | "unpack") => 2,
        _ => {
            return err(
                Code::Usage,
                "bundle: use create, verify FILE|DIR, list FILE|DIR or unpack FILE -o DIR",
            );
        }
    };
    if f.words.len() != want {
        return err(
            Code::Usage,
            format!(
                "`onramp bundle {}` takes {} argument(s); see `onramp bundle --help`",
                f.words[0],
                want - 1
            ),
        );
    }
    match f.words[0].as_str() {
        "create" => create(f),
        "verify" => {
            let b = fsutil::absolute(Path::new(&f.words[1]))?;
            let idx = verify(&b, &trusted_keys(&f.stack)?)?;
            let bytes: u64 = idx.files.iter().map(|e| e.size).sum();
            out::stdout_line(&format!(
                "bundle ok: {} {} for {}, {} files, {}",
                idx.stack,
                idx.version,
                idx.targets.join(", "),
                idx.files.len(),
                fsutil::human_bytes(bytes)
            ));
            Ok(0)
        }
        "list" => {
            let b = fsutil::absolute(Path::new(&f.words[1]))?;
            let idx = read_index(&b)?;
            out::stdout_line(&format!(
                "{} {} for {}",
                idx.stack,
                idx.version,
                idx.targets.join(", ")
            ));
            for e in &idx.files {
                out::stdout_line(&format!(
                    "{}  {:>10}  {}",
                    e.sha256,
                    fsutil::human_bytes(e.size),
                    e.path
                ));
            }
            Ok(0)
        }
        _ => {
            let b = fsutil::absolute(Path::new(&f.words[1]))?;
            let Some(o) = &f.output else {
                return err(Code::Usage, "bundle unpack needs -o DIR (a new directory)");
            };
            let o = fsutil::absolute(o)?;
            let keys = trusted_keys(&f.stack)?;
            let idx = unpack(&b, &o, &keys)?;
            if let Err(e) = check_manifest(&o, &idx, &keys) {
                fsutil::remove_tree(&o);
                return Err(e);
            }
            out::stdout_line(&o.display().to_string());
            Ok(0)
        }
    }
}

fn create(f: &Bundle) -> Result<i32> {
    let Some(out_path) = &f.output else {
        return err(Code::Usage, "bundle create needs -o FILE.tar.zst or -o DIR");
    };
    let out_path = fsutil::absolute(out_path)?;
    let archive = is_archive(&out_path);
    let stage = if archive {
        PathBuf::from(format!("{}.partial", out_path.display()))
    } else {
        out_path.clone()
    };
    if archive && out_path.exists() {
        return err(
            Code::Usage,
            format!("{} exists; bundle into a new file", out_path.display()),
        );
    }
    let marker = stage.join(INCOMPLETE);
    if let Ok(mut rd) = std::fs::read_dir(&stage)
        && rd.next().is_some()
        && !marker.exists()
    {
        return err(
            Code::Usage,
            format!(
                "{} is not empty; bundle into a new directory",
                stage.display()
            ),
        );
    }
    let resumed = marker.exists();
    fsutil::mkdirs(&stage)?;
    if !resumed {
        fsutil::write_atomic(&marker, b"", 0o644)?;
    } else {
        out::line(&format!(
            "onramp: resuming the bundle in {} (what is there is checked, not fetched again)",
            stage.display()
        ));
        // What the killed run was writing when it stopped.
        fsutil::remove_orphans_deep(&stage);
    }
    let keys = trusted_keys(&f.stack)?;
    let Some(mpath) = &f.stack.manifest else {
        return err(
            Code::Usage,
            "bundle create needs --manifest FILE (or the https:// URL of a published manifest)",
        );
    };
    // A published release by its URL: the manifest and its signature are
    // fetched (and checked) into the bundle, and everything it names is
    // resolved against that URL.
    let given = mpath.to_string_lossy().into_owned();
    let (mpath, murl) = if given.starts_with("https://") || given.starts_with("http://") {
        if f.stack.manifest_url.is_some() {
            return err(
                Code::Usage,
                "--manifest URL and --manifest-url: give the URL once, as --manifest",
            );
        }
        let (bytes, sig) =
            super::fetch::fetch_verified(&given, &keys, &f.fetch.options(None)?.net)?;
        let to = stage.join("manifest.json");
        fsutil::write_atomic(&to, &bytes, 0o644)?;
        let sig_to = crate::sign::sig_path(&to);
        match sig {
            Some(s) => fsutil::write_atomic(&sig_to, &s, 0o644)?,
            None => fsutil::remove(&sig_to),
        }
        (to, Some(given))
    } else {
        (mpath.clone(), f.stack.manifest_url.clone())
    };
    let mut man = manifest::load_signed(&mpath, murl.as_deref(), &keys)?;
    let mut targets: Vec<String> = f.targets.clone();
    if targets.is_empty() {
        targets.push(crate::platform::target());
    }
    for t in &targets {
        if !crate::platform::KNOWN_TARGETS.contains(&t.as_str()) {
            return err(Code::Usage, format!("--target {t:?}: unknown target"));
        }
    }
    // Only the variants and profile named, when any is.
    let chosen: Option<BTreeSet<String>> = if f.choice.gpu.is_some() || f.choice.profile.is_some() {
        let mut hw = crate::machine::Hardware::default();
        if let Some(g) = &f.choice.gpu {
            crate::machine::check_backend(g)?;
            crate::machine::force(&mut hw, g);
        }
        crate::plan::select(&mut man, &hw, f.choice.profile.as_deref())?;
        Some(man.m.components.iter().map(|c| c.id.clone()).collect())
    } else {
        None
    };
    let opts = f.fetch.options(None)?;
    let rep = crate::events::Progress::new(crate::events::Reporter::new(
        None,
        crate::events::Format::Ndjson,
        "models",
    )?);
    // A manifest read from a URL: what it names comes from beside that URL,
    // into the bundle, as the release directory holds it.
    let remote = man.url.is_some();
    if remote {
        man = ship::mirror_remote(&man, &stage, &opts, &rep)?;
    }
    // What install.sh, the helpers and the manifest's own files need.
    let pins = ship::copy_stack((!remote).then_some(&man), &f.helpers, &stage, None)?;
    let bytes = std::fs::read(&man.path).map_err(|e| Error::io("cannot read", &man.path, e))?;
    fsutil::write_atomic(&stage.join("manifest.json"), &bytes, 0o644)?;
    let sig = crate::sign::sig_path(&man.path);
    let sig_to = crate::sign::sig_path(&stage.join("manifest.json"));
    match std::fs::read(&sig) {
        Ok(s) => fsutil::write_atomic(&sig_to, &s, 0o644)?,
        Err(_) => fsutil::remove(&sig_to),
    }
    let bake = Bake {
        base: String::new(),
        stack: man.m.name.clone(),
        manifest: String::new(),
        keys: keys.texts(),
        pins,
    };
    ship::write_installers(&stage, &bake)?;
    // Artifacts and worker sources by URL: through the download engine,
    // into the bundle itself (resumable).
    let cache = Cache::new(stage.clone());
    let wants = url_wants(&man, &targets, chosen.as_ref());
    for (_, w) in &wants {
        crate::signal::check()?;
        cache.ensure(w, &opts, &rep)?;
    }
    let prefix = stage.join(".no-prefix");
    for c in man.m.components.iter().filter(|c| c.kind == Kind::Worker) {
        if chosen.as_ref().is_some_and(|s| !s.contains(&c.id)) {
            continue;
        }
        if c.catalog.as_ref().is_some_and(|k| k.base.contains("://"))
            || c.recipe.as_ref().is_some_and(|r| r.url.is_some())
        {
            return err(
                Code::Manifest,
                format!(
                    "{}: its recipe comes from a URL; a bundle carries only recipes beside the manifest (a local catalog or recipe.path)",
                    c.id
                ),
            );
        }
        for t in &targets {
            let job = crate::worker::Job {
                comp: c,
                man: &man,
                prefix: &prefix,
                target: t,
                cache: &cache,
                opts: &opts,
                rep: &rep,
                allow_skip_checksums: false,
                allow_unpinned_catalog: f.allow_unpinned_catalog,
            };
            crate::worker::prefetch(&job)?;
        }
    }
    // The cache's own bookkeeping is not part of the bundle.
    for d in ["partial", "seals"] {
        fsutil::remove_tree(stage.join(d));
    }
    fsutil::remove(stage.join(fsutil::CREATED_NOTE));
    let mut files = Vec::new();
    for rel in files_below(&stage)? {
        if rel == INDEX || rel == INCOMPLETE {
            continue;
        }
        let p = stage.join(&rel);
        let size = std::fs::metadata(&p)
            .map_err(|e| Error::io("cannot stat", &p, e))?
            .len();
        files.push(Entry {
            sha256: fsutil::sha256_file(&p)?,
            path: rel,
            size,
        });
    }
    let idx = Index {
        schema: 1,
        stack: man.m.name.clone(),
        version: man.m.version.clone(),
        targets: targets.clone(),
        files,
    };
    let body = serde_json::to_vec_pretty(&idx)
        .map_err(|e| Error::new(Code::Internal, format!("bundle index: {e}")))?;
    fsutil::write_atomic(&stage.join(INDEX), &body, 0o644)?;
    let total: u64 = idx.files.iter().map(|e| e.size).sum();
    if archive {
        write_archive(&stage, &idx, &out_path)?;
        fsutil::remove_tree(&stage);
    } else {
        fsutil::remove(&marker);
    }
    out::line(&format!(
        "onramp: bundle of {} {} for {} written to {}: {} files, {}",
        idx.stack,
        idx.version,
        targets.join(", "),
        out_path.display(),
        idx.files.len(),
        fsutil::human_bytes(total)
    ));
    out::stdout_line(&format!("sh install.sh --from {}", out_path.display()));
    Ok(0)
}
