// Which restriction lists a check point runs, in Postfix's order:
//
//   CONNECT  smtpd_client_restrictions           (at RCPT instead when smtpd_delay_reject)
//   HELO     smtpd_helo_restrictions             (idem)
//   MAIL     smtpd_sender_restrictions           (idem)
//   RCPT     [client, helo, sender,] relay + recipient lists (smtpd_relay_before_
//            recipient_restrictions decides their order), defer_if_permit, then
//            recipient validation (local_recipient_maps, virtual_*_maps, ...)
//   DATA / END-OF-MESSAGE / ETRN  their own list
//   VRFY     as RCPT
//
// A stage that ends in OK only ends that list; the next stage still runs.
#include "smtpd/smtpd_check_internal.h"
#include <sys/time.h>
#include <unistd.h>

#include "util/access/access_map.h"
#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::smtpd::check {
namespace {

using Step = std::function<void(Next)>;

// Runs the steps in order until one rejects.
void run_steps(std::shared_ptr<std::vector<Step>> steps, size_t i, Next done) {
    if (i >= steps->size()) {
        done(Verdict::Dunno);
        return;
    }
    (*steps)[i]([steps, i, done](Verdict v) {
        if (v == Verdict::Reject)
            done(v);
        else
            run_steps(steps, i + 1, done);
    });
}

Stage make_stage(StageKind kind, const SessionFacts& f) {
    switch (kind) {
        case StageKind::Client: return {kind, f.client.namaddr(), "Client host"};
        case StageKind::Helo: return {kind, f.helo_name, "Helo command"};
        case StageKind::Sender: return {kind, f.transaction.sender, "Sender address"};
        case StageKind::Recipient: return {kind, f.transaction.recipient, "Recipient address"};
        case StageKind::Data: return {kind, "DATA", "Data command"};
        case StageKind::EndOfData: return {kind, "END-OF-MESSAGE", "End-of-data"};
        case StageKind::Etrn: return {kind, f.etrn_domain, "Etrn command"};
    }
    return {};
}

// One restriction list as a step of the plan.
Step list_step(std::weak_ptr<Evaluation> weak, StageKind kind, const RestrictionList* list) {
    return [weak, kind, list](Next next) {
        auto e = weak.lock();
        if (!e) return;
        e->stage = make_stage(kind, e->facts);
        e->warn_if_reject = 0;
        e->defer_if_reject = Deferred{};
        // smtpd_reject_unlisted_sender: the sender list ends with the address check.
        if (kind == StageKind::Sender && e->engine.settings.reject_unlisted_sender) {
            return e->run(*list, 0, 1, [weak, next](Verdict v) {
                auto e2 = weak.lock();
                if (!e2) return;
                if (v == Verdict::Reject) return next(v);
                reject_unlisted_sender(*e2, Restriction{}, next);
            });
        }
        e->run(*list, 0, 1, next);
    };
}

// Forces permission into deferral when an earlier temporary error may have kept us
// from rejecting the mail, and reports that earlier problem.
Step defer_if_permit_step(std::weak_ptr<Evaluation> weak) {
    return [weak](Next next) {
        auto e = weak.lock();
        if (!e) return;
        if (!e->defer_if_permit.active) return next(Verdict::Dunno);
        e->warn_if_reject = 0;
        e->defer_if_reject = Deferred{};
        next(e->reject_reply(e->defer_if_permit.reply));
    };
}

Step validate_step(std::weak_ptr<Evaluation> weak) {
    return [weak](Next next) {
        auto e = weak.lock();
        if (!e) return;
        e->stage = make_stage(StageKind::Recipient, e->facts);
        validate_recipient(*e, e->facts.transaction.recipient, next);
    };
}

}  // namespace

void SessionImpl::check(CheckPoint point, const SessionFacts& facts, std::function<void(CheckOutcome)> done) {
    if (point == CheckPoint::Mail) {
        // Postfix's "%x.%lx.%lx.%x": pid, time, microseconds, transaction number.
        timeval tv{};
        gettimeofday(&tv, nullptr);
        instance_ = strprintf("%x.%lx.%lx.%x", static_cast<unsigned>(getpid()), static_cast<unsigned long>(tv.tv_sec),
                              static_cast<unsigned long>(tv.tv_usec), instance_seqno_++);
    }
    auto ev = std::make_shared<Evaluation>(engine, *this, facts, point);
    current_ = ev;  // a check still in flight is abandoned
    const Settings& s = engine.settings;
    const CompiledLists& l = engine.lists;
    auto steps = std::make_shared<std::vector<Step>>();
    std::weak_ptr<Evaluation> weak = ev;

    // Postfix evaluates the delayed stages only when their data exist.
    // VRFY runs the same checks as RCPT TO (Postfix's vrfy_cmd calls smtpd_check_rcpt).
    bool rcpt = point == CheckPoint::Rcpt || point == CheckPoint::Vrfy;
    bool delayed = s.delay_reject && rcpt;
    if (point == CheckPoint::Connect && !s.delay_reject) steps->push_back(list_step(weak, StageKind::Client, &l.client));
    if (point == CheckPoint::Helo && !s.delay_reject) steps->push_back(list_step(weak, StageKind::Helo, &l.helo));
    if (point == CheckPoint::Mail && !s.delay_reject) steps->push_back(list_step(weak, StageKind::Sender, &l.sender));
    if (delayed) {
        steps->push_back(list_step(weak, StageKind::Client, &l.client));
        if (!facts.helo_name.empty()) steps->push_back(list_step(weak, StageKind::Helo, &l.helo));
        if (facts.transaction.mail_given) steps->push_back(list_step(weak, StageKind::Sender, &l.sender));
    }
    if (rcpt) {
        // The saved defer_if_permit of stages evaluated at earlier commands.
        if (!delayed)
            for (const Deferred* d : {&saved_client_, &saved_helo_, &saved_sender_})
                if (d->active && !ev->defer_if_permit.active) ev->defer_if_permit = *d;
        const RestrictionList* first = s.relay_before_recipient ? &l.relay : &l.recipient;
        const RestrictionList* second = s.relay_before_recipient ? &l.recipient : &l.relay;
        steps->push_back(list_step(weak, StageKind::Recipient, first));
        steps->push_back(list_step(weak, StageKind::Recipient, second));
    }
    if (point == CheckPoint::Data) steps->push_back(list_step(weak, StageKind::Data, &l.data));
    if (point == CheckPoint::EndOfData) steps->push_back(list_step(weak, StageKind::EndOfData, &l.end_of_data));
    if (point == CheckPoint::Etrn) steps->push_back(list_step(weak, StageKind::Etrn, &l.etrn));
    bool final_defer = rcpt || point == CheckPoint::Data ||
                       point == CheckPoint::EndOfData || point == CheckPoint::Etrn;
    if (final_defer) steps->push_back(defer_if_permit_step(weak));
    if (rcpt) steps->push_back(validate_step(weak));
    auto finish = [this, weak, point, done](Verdict v) {
        auto e = weak.lock();
        if (!e) return;
        // Not delayed: remember a stage's defer_if_permit for the RCPT that follows.
        if (point == CheckPoint::Connect) saved_client_ = e->defer_if_permit;
        if (point == CheckPoint::Helo) saved_helo_ = e->defer_if_permit;
        if (point == CheckPoint::Mail) saved_sender_ = e->defer_if_permit;
        CheckOutcome outcome;
        if (v == Verdict::Reject) outcome.reply = e->reply;
        if (current_ == e) current_.reset();
        done(std::move(outcome));  // may destroy this session: touch nothing after
    };
    run_steps(steps, 0, finish);
}

void SessionImpl::reset_transaction() {
    actions_ = MessageActions{};
    saved_sender_ = Deferred{};
}

}  // namespace postern::smtpd::check
