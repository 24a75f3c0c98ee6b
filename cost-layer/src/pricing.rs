//! Pricing a closing call: the model's entry and ledger cell, cached per thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};

use cost_core::{PriceTable, Resolution};

use crate::ledger::{Cell, Dimension, LedgerInner, LedgerKey};

/// What the layer needs to price calls of one model name with one table.
pub(crate) struct ModelSlot {
    /// The name as recorded (kept so its address stays unique while cached).
    name: Arc<str>,
    /// The table the resolution belongs to. A weak reference keeps its address unique while
    /// cached, without keeping the table's entries alive after its layer is gone.
    table: Weak<PriceTable>,
    pub(crate) resolution: Option<Resolution>,
    /// The table's version, this thread's own copy: every call's totals name it, and a
    /// reference count shared by all threads would bounce between their caches on every call.
    pub(crate) version: Arc<str>,
    /// The ledger key: the entry's key when priced, else the name as recorded.
    pub(crate) key: Arc<str>,
    pub(crate) cell: Arc<Cell>,
}

/// The name used for calls that recorded no model.
pub(crate) static UNKNOWN_MODEL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unknown"));

type SlotCache = HashMap<(u64, usize), Arc<ModelSlot>, foldhash::fast::FixedState>;

thread_local! {
    static SLOTS: RefCell<SlotCache> = RefCell::new(SlotCache::default());
}

/// Entries a thread's cache may hold before it is cleared.
const SLOT_CACHE_LIMIT: usize = 4_096;

/// Runs `f` with the slot of `name` for `table`, from this thread's cache (a hit touches no
/// reference count).
pub(crate) fn with_model_slot<R>(
    layer_id: u64,
    ledger: &LedgerInner,
    table: &Arc<PriceTable>,
    name: &Arc<str>,
    f: impl FnOnce(&ModelSlot) -> R,
) -> R {
    let key = (layer_id, Arc::as_ptr(name) as *const u8 as usize);
    SLOTS.with(|cache| {
        if let Ok(cache) = cache.try_borrow()
            && let Some(slot) = cache.get(&key)
            && std::ptr::eq(slot.table.as_ptr(), Arc::as_ptr(table))
            && Arc::ptr_eq(&slot.name, name)
        {
            return f(slot);
        }
        let slot = Arc::new(new_slot(ledger, table, name));
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() >= SLOT_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&slot));
        }
        f(&slot)
    })
}

fn new_slot(ledger: &LedgerInner, table: &Arc<PriceTable>, name: &Arc<str>) -> ModelSlot {
    let resolution = table.resolve(name).ok();
    let model_key = match resolution {
        Some(r) if *table.entry(r.id).key != **name => Arc::from(table.entry(r.id).key.as_str()),
        _ => Arc::clone(name),
    };
    ModelSlot {
        name: Arc::clone(name),
        table: Arc::downgrade(table),
        resolution,
        version: Arc::from(&*table.info().version),
        cell: ledger.cell(LedgerKey::One(Dimension::Model, Arc::clone(&model_key))),
        key: model_key,
    }
}
