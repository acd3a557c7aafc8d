// The console's state and who watches it: the live feed and the panels write into one object,
// `notify()` tells the subscribers once per animation frame however many messages arrived.
//
//   const store = createStore(state)
//   store.subscribe(fn) → unsubscribe   fn(state) after changes
//   store.notify()                      a change happened (coalesced to the next frame)
export function createStore(state) {
  const watchers = new Set();
  let pending = false;
  const flush = () => {
    pending = false;
    for (const fn of watchers) fn(state);
  };
  return {
    state,
    subscribe(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
    notify() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(flush);
    },
  };
}
