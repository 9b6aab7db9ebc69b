// ember/impl/monitor.ipp — monitor and demonitor (compiled once).
#pragma once

#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/signal/monitor.hpp"

namespace ember {

monitor_ref monitor(pid target) {
  detail::process* self = detail::current_or_throw("monitor");
  monitor_ref ref{self->rt->next_monitor_id(), target};
  bool watching = false;
  if (detail::process* p = target.block()) {
    std::lock_guard lk(p->hooks_lock);
    if (p->serial.load(std::memory_order_acquire) == target.serial() && !p->hooks_closed) {
      p->monitors.push_back({ref.id, self->self_pid()});
      watching = true;
    }
  }
  if (!watching) send(self->self_pid(), down{ref, target, exit_reason::noproc()});
  else detail::spend(1);
  return ref;
}

bool demonitor(const monitor_ref& ref, bool flush) {
  detail::process* self = detail::current_or_throw("demonitor");
  bool removed = false;
  if (detail::process* p = ref.target.block()) {
    std::lock_guard lk(p->hooks_lock);
    if (p->serial.load(std::memory_order_acquire) == ref.target.serial()) {
      for (auto it = p->monitors.begin(); it != p->monitors.end(); ++it) {
        if (it->id == ref.id) {
          p->monitors.erase(it);
          removed = true;
          break;
        }
      }
    }
  }
  if (!removed && flush) {
    // The `down` (if any) was pushed before the target released its lock,
    // so it is in our inbox now.
    detail::mailbox& mb = self->mbox;
    mb.drain_inbox();
    detail::envelope* prev = nullptr;
    for (detail::envelope* e = mb.first(); e; prev = e, e = e->next) {
      if (e->tag == detail::type_tag<down>() && detail::payload<down>(e).ref.id == ref.id) {
        mb.unlink(prev, e);
        e->destroy(e);
        break;
      }
    }
  }
  detail::spend(1);
  return removed;
}

}  // namespace ember
