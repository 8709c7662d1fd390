//! Trees and blobs for the history scan, read straight from the repository's pack files through one cache
//! of resolved objects shared by all scanning threads, keyed by pack position.
//!
//! Why not gix's own object reading: its delta-base cache keeps only the results of delta resolution, never
//! a full (undeltified) object, so every read of a delta whose chain ends at a full object inflates that
//! object again — on the benchmark histories that was most of the zlib time, itself about two fifths of a
//! scan. Here every entry on a chain (the full base, each intermediate delta result) is cached as it is
//! resolved, so an entry is inflated about once while it stays cached. Objects in no pack (loose objects,
//! alternates) are read through gix.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::Bundle;
use gix::odb::pack::data::entry::Header;
use libdeflater::Decompressor;

/// Why an object could not be read from a pack.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OdbError {
    #[error("pack {pack}: {message}")]
    Pack { pack: String, message: String },
    #[error("object {0}: delta base not found")]
    MissingBase(ObjectId),
    #[error("object {0}: delta chain too deep (a cycle in the pack?)")]
    TooDeep(ObjectId),
}

/// Where an object lives: pack number and the offset of its entry.
type Slot = (u32, u64);

/// A resolved object: its kind and its bytes (an `Arc<Vec>`, not `Arc<[u8]>`: the inflated or delta-applied
/// buffer is shared as it is, where `Arc<[u8]>` would copy every object once more).
#[derive(Clone)]
pub(crate) struct Object {
    pub kind: Kind,
    pub data: Arc<Vec<u8>>,
}

/// FxHash: the keys (pack offsets, object ids) are already well spread, and SipHash showed in profiles.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Two generations approximate least-recently-used eviction at O(1): lookups promote from the old generation,
/// and when the young one fills, the old one is dropped and the young one takes its place.
struct Cache<K> {
    young: HashMap<K, Object, BuildHasherDefault<Fx>>,
    old: HashMap<K, Object, BuildHasherDefault<Fx>>,
    young_bytes: usize,
    generation_bytes: usize,
}

impl<K: Hash + Eq + Copy> Cache<K> {
    fn new(bytes: usize) -> Self {
        Self {
            young: HashMap::default(),
            old: HashMap::default(),
            young_bytes: 0,
            generation_bytes: bytes / 2,
        }
    }

    fn get(&mut self, key: K) -> Option<Object> {
        if let Some(o) = self.young.get(&key) {
            return Some(o.clone());
        }
        let o = self.old.remove(&key)?;
        self.insert(key, o.clone());
        Some(o)
    }

    fn insert(&mut self, key: K, object: Object) {
        if self.young_bytes >= self.generation_bytes {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += object.data.len() + 64;
        self.young.insert(key, object);
    }
}

/// The packs of one repository and the shared cache; `Sync`, one per scan.
pub(crate) struct Packs {
    bundles: Vec<Bundle>,
    /// For each bundle, its ids and their entries' offsets.
    ids: Vec<IdTable>,
    cache: Mutex<Cache<Slot>>,
}

/// Delta chains deeper than this are treated as corrupt (git's own limit is 4095; `git gc` writes 50).
const MAX_DEPTH: usize = 10_000;

impl Packs {
    /// Opens every pack of the object directory `objects` (packs that fail to open are left to gix) with a
    /// cache of about `cache_bytes` of resolved objects.
    pub(crate) fn open(objects: &Path, object_hash: gix::hash::Kind, cache_bytes: usize) -> Self {
        let mut idx: Vec<_> = std::fs::read_dir(objects.join("pack"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        idx.sort();
        let bundles: Vec<Bundle> = idx
            .iter()
            .filter_map(|p| Bundle::at(p, object_hash).ok())
            .collect();
        let ids = bundles.iter().map(|b| IdTable::new(&b.index)).collect();
        Self {
            bundles,
            ids,
            cache: Mutex::new(Cache::new(cache_bytes)),
        }
    }

    fn locate(&self, id: &gix::oid) -> Option<Slot> {
        self.ids
            .iter()
            .enumerate()
            .find_map(|(k, table)| Some((k as u32, table.find(id)?)))
    }

    fn cached(&self, slot: Slot) -> Option<Object> {
        self.cache.lock().ok()?.get(slot)
    }

    fn remember(&self, slot: Slot, object: &Object) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(slot, object.clone());
        }
    }

    fn pack_error(&self, pack: u32, e: impl std::fmt::Display) -> OdbError {
        OdbError::Pack {
            pack: self
                .bundles
                .get(pack as usize)
                .map(|b| b.pack.path().display().to_string())
                .unwrap_or_default(),
            message: e.to_string(),
        }
    }

    /// The object at `slot`, resolving its delta chain down to a cached or full object.
    fn resolve(
        &self,
        id: &gix::oid,
        slot: Slot,
        inflate: &mut Decompressor,
        depth: usize,
    ) -> Result<Object, OdbError> {
        if let Some(o) = self.cached(slot) {
            return Ok(o);
        }
        let (pack_no, offset) = slot;
        let pack = &self.bundles[pack_no as usize].pack;
        let mut chain = Vec::new();
        let mut cursor = pack
            .entry(offset)
            .map_err(|e| self.pack_error(pack_no, e))?;
        let mut base = loop {
            if chain.len() + depth > MAX_DEPTH {
                return Err(OdbError::TooDeep(id.to_owned()));
            }
            match cursor.header {
                Header::OfsDelta { base_distance } => {
                    let at = cursor
                        .checked_base_pack_offset(base_distance)
                        .ok_or_else(|| {
                            self.pack_error(pack_no, "delta base before the pack start")
                        })?;
                    chain.push(cursor);
                    if let Some(o) = self.cached((pack_no, at)) {
                        break o;
                    }
                    cursor = pack.entry(at).map_err(|e| self.pack_error(pack_no, e))?;
                }
                Header::RefDelta { base_id } => {
                    chain.push(cursor);
                    let Some(at) = self.locate(&base_id) else {
                        return Err(OdbError::MissingBase(id.to_owned()));
                    };
                    break self.resolve(&base_id, at, inflate, depth + chain.len())?;
                }
                header => {
                    let kind = header
                        .as_kind()
                        .ok_or_else(|| self.pack_error(pack_no, "unknown entry type"))?;
                    let data = self.inflate(pack_no, &cursor, inflate)?;
                    let o = Object {
                        kind,
                        data: Arc::new(data),
                    };
                    self.remember((pack_no, cursor.pack_offset()), &o);
                    break o;
                }
            }
        };
        for entry in chain.iter().rev() {
            let delta = self.inflate(pack_no, entry, inflate)?;
            let data = apply_delta(&base.data, &delta).map_err(|e| self.pack_error(pack_no, e))?;
            base = Object {
                kind: base.kind,
                data: Arc::new(data),
            };
            self.remember((pack_no, entry.pack_offset()), &base);
        }
        Ok(base)
    }

    /// Inflates one entry with libdeflate: its whole-buffer decoder needs the output size, which the entry
    /// header gives, and decodes small streams markedly faster than a streaming zlib (most of a pack's
    /// entries are small deltas, whose cost is mostly setting up Huffman tables).
    fn inflate(
        &self,
        pack_no: u32,
        entry: &gix::odb::pack::data::Entry,
        inflate: &mut Decompressor,
    ) -> Result<Vec<u8>, OdbError> {
        let pack = &self.bundles[pack_no as usize].pack;
        let size = usize::try_from(entry.decompressed_size)
            .map_err(|_| self.pack_error(pack_no, "entry too large"))?;
        // The stream runs from the entry's data to at most the pack's end; the decoder stops where it ends.
        let input = pack
            .entry_slice(entry.data_offset..pack.pack_end() as u64)
            .ok_or_else(|| self.pack_error(pack_no, "entry data beyond the pack end"))?;
        let mut out = Vec::new();
        // A corrupt size must not abort the process on allocation.
        out.try_reserve_exact(size)
            .map_err(|_| self.pack_error(pack_no, "entry too large"))?;
        out.resize(size, 0);
        match inflate.zlib_decompress(input, &mut out) {
            Ok(n) if n == size => Ok(out),
            Ok(_) => Err(self.pack_error(
                pack_no,
                format!(
                    "entry at {}: inflated size differs from its header",
                    entry.pack_offset()
                ),
            )),
            Err(e) => {
                Err(self.pack_error(pack_no, format!("entry at {}: {e}", entry.pack_offset())))
            }
        }
    }
}

/// The first eight bytes of an object id (ids are 20 or 32 bytes) as a number that sorts like the id.
fn key(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |w| u64::from_be_bytes(*w))
}

/// One pack's ids and entry offsets, for finding an object's entry in about two memory reads: the entries
/// in index (id) order, and for each value of an id's leading bits the first entry that has it. Object ids
/// are uniformly spread, so with about one bucket per entry a bucket holds one or two. (An interpolation
/// search over the index took four or five cache misses per lookup: its probes, then the index's id and
/// offset tables; lookups were a tenth of a scan.)
struct IdTable {
    entries: Vec<(ObjectId, u64)>,
    /// `buckets[b]..buckets[b + 1]` are the entries whose key's top bits are `b`.
    buckets: Vec<u32>,
    shift: u32,
}

impl IdTable {
    fn new(index: &gix::odb::pack::index::File) -> Self {
        let n = index.num_objects();
        let bits = (n as u64).next_power_of_two().trailing_zeros().max(1);
        let shift = 64 - bits;
        let mut entries = Vec::with_capacity(n as usize);
        let mut buckets = Vec::with_capacity((1usize << bits) + 1);
        for i in 0..n {
            let id = index.oid_at_index(i).to_owned();
            let bucket = (key(id.as_bytes()) >> shift) as usize;
            // Open every bucket up to this entry's (empty buckets start and end here).
            while buckets.len() <= bucket {
                buckets.push(i);
            }
            entries.push((id, index.pack_offset_at_index(i)));
        }
        buckets.resize((1usize << bits) + 1, n);
        Self {
            entries,
            buckets,
            shift,
        }
    }

    /// The pack offset of `id`'s entry, if this pack has it.
    fn find(&self, id: &gix::oid) -> Option<u64> {
        let bucket = (key(id.as_bytes()) >> self.shift) as usize;
        let from = *self.buckets.get(bucket)? as usize;
        let to = *self.buckets.get(bucket + 1)? as usize;
        self.entries
            .get(from..to)?
            .iter()
            .find(|(candidate, _)| candidate.as_ref() == id)
            .map(|&(_, offset)| offset)
    }
}

/// Applies a git delta (`base size`, `result size`, then copy and insert instructions) to `base`.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, &'static str> {
    fn varint(d: &[u8], at: &mut usize) -> Result<usize, &'static str> {
        let mut value = 0usize;
        let mut shift = 0;
        loop {
            let b = *d.get(*at).ok_or("truncated delta header")?;
            *at += 1;
            if shift > 56 {
                return Err("delta size too large");
            }
            value |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }
    let mut at = 0;
    if varint(delta, &mut at)? != base.len() {
        return Err("delta base size does not match its base");
    }
    let size = varint(delta, &mut at)?;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| "delta result too large")?;
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            // Copy from the base: offset and size bytes present as the low seven bits say.
            let mut field = [0usize; 7];
            for (bit, slot) in field.iter_mut().enumerate() {
                if op & (1 << bit) != 0 {
                    *slot = *delta.get(at).ok_or("truncated delta copy")? as usize;
                    at += 1;
                }
            }
            let offset = field[0] | field[1] << 8 | field[2] << 16 | field[3] << 24;
            let mut len = field[4] | field[5] << 8 | field[6] << 16;
            if len == 0 {
                len = 0x10000;
            }
            let from = base
                .get(offset..offset.checked_add(len).ok_or("delta copy out of range")?)
                .ok_or("delta copy out of range")?;
            out.extend_from_slice(from);
        } else if op != 0 {
            let from = delta
                .get(at..at + op as usize)
                .ok_or("truncated delta insert")?;
            out.extend_from_slice(from);
            at += op as usize;
        } else {
            return Err("reserved delta instruction 0");
        }
    }
    if out.len() != size {
        return Err("delta result size does not match its header");
    }
    Ok(out)
}

/// One thread's view: the shared packs, gix for objects in no pack, this thread's inflate state, and a small
/// cache by object id in front of it all (each tree is read twice in a row: as one commit's tree and as the
/// next one's parent tree; this spares the index search and the shared lock).
pub(crate) struct Reader<'a> {
    packs: &'a Packs,
    repo: &'a gix::Repository,
    inflate: RefCell<Decompressor>,
    recent: RefCell<Cache<ObjectId>>,
}

/// The per-thread cache by object id.
const RECENT_BYTES: usize = 16 << 20;

impl<'a> Reader<'a> {
    pub(crate) fn new(packs: &'a Packs, repo: &'a gix::Repository) -> Self {
        Self {
            packs,
            repo,
            inflate: RefCell::new(Decompressor::new()),
            recent: RefCell::new(Cache::new(RECENT_BYTES)),
        }
    }

    /// The object `id`, from a pack or else through gix; `None` when the repository lacks it.
    pub(crate) fn object(&self, id: &gix::oid) -> Result<Option<Object>, gix::Error> {
        if let Some(o) = self
            .recent
            .try_borrow_mut()
            .ok()
            .and_then(|mut r| r.get(id.to_owned()))
        {
            return Ok(Some(o));
        }
        let found = self.lookup(id)?;
        if let (Some(o), Ok(mut recent)) = (&found, self.recent.try_borrow_mut()) {
            recent.insert(id.to_owned(), o.clone());
        }
        Ok(found)
    }

    fn lookup(&self, id: &gix::oid) -> Result<Option<Object>, gix::Error> {
        if let Some(slot) = self.packs.locate(id) {
            let mut inflate = self
                .inflate
                .try_borrow_mut()
                .map_err(gix::Error::from_error)?;
            return self
                .packs
                .resolve(id, slot, &mut inflate, 0)
                .map(Some)
                .map_err(gix::Error::from_error);
        }
        let mut buf = Vec::new();
        Ok(
            gix::objs::Find::try_find(&self.repo.objects, id, &mut buf)?.map(|d| Object {
                kind: d.kind,
                data: Arc::new(d.data.to_vec()),
            }),
        )
    }
}

impl gix::objs::Find for Reader<'_> {
    fn try_find<'b>(
        &self,
        id: &gix::oid,
        buffer: &'b mut Vec<u8>,
    ) -> Result<Option<gix::objs::Data<'b>>, gix::Error> {
        let Some(o) = self.object(id)? else {
            return Ok(None);
        };
        buffer.clear();
        buffer.extend_from_slice(&o.data);
        Ok(Some(gix::objs::Data {
            kind: o.kind,
            object_hash: id.kind(),
            data: buffer,
        }))
    }
}

impl gix::objs::FindHeader for Reader<'_> {
    fn try_header(&self, id: &gix::oid) -> Result<Option<gix::objs::Header>, gix::Error> {
        Ok(self.object(id)?.map(|o| gix::objs::Header {
            kind: o.kind,
            size: o.data.len() as u64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{IdTable, apply_delta};

    #[test]
    fn the_id_table_finds_every_id_of_an_index_at_its_offset_and_no_other() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        for i in 0..400 {
            std::fs::write(dir.path().join(format!("f{i}")), format!("{i}\n")).expect("write");
        }
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "many objects"]);
        git(&["gc", "-q"]);
        let pack_dir = dir.path().join(".git/objects/pack");
        let idx = std::fs::read_dir(&pack_dir)
            .expect("pack directory")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .expect("an index");
        let index = gix::odb::pack::index::File::at(&idx, gix::hash::Kind::Sha1).expect("index");
        assert!(index.num_objects() > 400);
        let table = IdTable::new(&index);
        let offset_of = |id: gix::ObjectId| index.lookup(id).map(|i| index.pack_offset_at_index(i));
        for i in 0..index.num_objects() {
            let id = index.oid_at_index(i).to_owned();
            assert_eq!(table.find(&id), Some(index.pack_offset_at_index(i)), "{id}");
            // Neighbours that differ in the last byte, or in the first, are absent.
            for at in [19, 0] {
                let mut bytes = id.as_bytes().to_vec();
                bytes[at] ^= 1;
                let near = gix::ObjectId::from_bytes_or_panic(&bytes);
                assert_eq!(table.find(&near), offset_of(near), "{near}");
            }
        }
        for edge in [[0u8; 20], [0xff; 20]] {
            let id = gix::ObjectId::from_bytes_or_panic(&edge);
            assert_eq!(table.find(&id), offset_of(id));
        }
    }

    #[test]
    fn a_delta_copies_from_its_base_and_inserts_literals() {
        // base 11 bytes, result 9: copy "hello" (offset 0, size 5), insert "!!", copy "ld" (offset 9, size 2).
        let base = b"hello world";
        let delta = [11, 9, 0x90, 5, 2, b'!', b'!', 0x91, 9, 2];
        assert_eq!(apply_delta(base, &delta).as_deref(), Ok(&b"hello!!ld"[..]));
    }

    #[test]
    fn a_malformed_delta_is_an_error_not_a_panic() {
        let base = b"abc";
        assert!(
            apply_delta(base, &[4, 1, 1, b'x']).is_err(),
            "wrong base size"
        );
        assert!(
            apply_delta(base, &[3, 1, 0x91, 2, 5]).is_err(),
            "copy past the end"
        );
        assert!(
            apply_delta(base, &[3, 2, 3, b'x']).is_err(),
            "truncated insert"
        );
        assert!(
            apply_delta(base, &[3, 1, 0]).is_err(),
            "reserved instruction"
        );
        assert!(apply_delta(base, &[3, 2, 1, b'x']).is_err(), "short result");
        assert!(apply_delta(base, &[3]).is_err(), "truncated header");
    }
}
