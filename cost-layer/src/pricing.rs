//! Pricing a closing call: the model's entry and ledger cell, cached per thread.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Weak};

use cost_core::budget::{Clock, SystemClock};
use cost_core::{PriceTable, Resolution, StalePrice};

use crate::ledger::{Cell as LedgerCell, Dimension, LedgerInner, LedgerKey};

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
    /// The model's ledger cell, made when the first call is posted to it (pricing a call for
    /// its OpenTelemetry attributes alone must not add a model to the ledger).
    cell: OnceCell<Arc<LedgerCell>>,
    /// The entry's price, when it was older than the layer's age limit as this slot was made.
    pub(crate) stale: Option<Box<StalePrice>>,
    /// This thread reported `stale` to the layer already.
    pub(crate) stale_reported: Cell<bool>,
    /// The causes (bits) of unpriced calls of the model this thread reported to the layer.
    pub(crate) unpriced_reported: Cell<u32>,
}

impl ModelSlot {
    /// The model's ledger cell.
    #[inline]
    pub(crate) fn cell(&self, ledger: &LedgerInner) -> &Arc<LedgerCell> {
        self.cell
            .get_or_init(|| ledger.cell(LedgerKey::One(Dimension::Model, Arc::clone(&self.key))))
    }
}

/// The name used for calls that recorded no model.
pub(crate) static UNKNOWN_MODEL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unknown"));

type SlotCache = HashMap<(u64, usize), Rc<ModelSlot>, foldhash::fast::FixedState>;

thread_local! {
    static SLOTS: RefCell<SlotCache> = RefCell::new(SlotCache::default());
}

/// Entries a thread's cache may hold before it is cleared.
const SLOT_CACHE_LIMIT: usize = 4_096;

/// Runs `f` with the slot of `name` for `table` and the layer `layer_id`, from this thread's
/// cache (a hit touches no reference count). `age_limit`: days after which the entry's price is
/// reported as stale (`None`: never).
pub(crate) fn with_model_slot<R>(
    layer_id: u64,
    age_limit: Option<u32>,
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
        let slot = Rc::new(new_slot(table, name, age_limit));
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() >= SLOT_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, Rc::clone(&slot));
        }
        f(&slot)
    })
}

fn new_slot(table: &Arc<PriceTable>, name: &Arc<str>, age_limit: Option<u32>) -> ModelSlot {
    let resolution = table.resolve(name).ok();
    // Read when the slot is made: a thread keeps its slot until the table is replaced (or its
    // cache is cleared).
    let stale = resolution.zip(age_limit).and_then(|(r, limit)| {
        let entry = table.entry(r.id);
        entry
            .stale_price(SystemClock.unix_seconds(), limit)
            .map(Box::new)
    });
    let model_key = match resolution {
        Some(r) if *table.entry(r.id).key != **name => Arc::from(table.entry(r.id).key.as_str()),
        _ => Arc::clone(name),
    };
    ModelSlot {
        name: Arc::clone(name),
        table: Arc::downgrade(table),
        resolution,
        version: Arc::from(&*table.info().version),
        cell: OnceCell::new(),
        key: model_key,
        stale,
        stale_reported: Cell::new(false),
        unpriced_reported: Cell::new(0),
    }
}
