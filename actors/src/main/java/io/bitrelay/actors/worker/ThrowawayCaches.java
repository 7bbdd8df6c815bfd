package io.bitrelay.actors.worker;

import io.bitrelay.runtime.model.opt.KvCache;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.wire.BatchLayout;

import java.util.ArrayList;
import java.util.List;

/** Calibration sequences run whole in one step and are forgotten: their caches never join a stage's map. */
final class ThrowawayCaches implements AutoCloseable {
    private final OptModel model;
    private final List<KvCache> caches = new ArrayList<>();

    /** @param model makes the caches (their layers and KV precision) */
    ThrowawayCaches(OptModel model) {
        this.model = model;
    }

    /** A fresh cache for {@code entry}'s sequence, freed with the others at {@link #close()}. */
    KvCache newCache(BatchLayout.Entry entry) {
        KvCache cache = model.newCache();
        caches.add(cache);
        return cache;
    }

    @Override
    public void close() {
        caches.forEach(KvCache::close);
    }
}
