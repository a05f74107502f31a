// One message inside cleanup(8): the envelope as the client sent it, then the content
// in chunks, then the end. Addresses go through the rewrite chain, headers through
// header_checks and the header rules (drop, rewrite, extract, count hops, add missing
// ones), body lines through body_checks; the result is buffered and written as a queue
// file by finish(). The queue file itself is committed by the caller (group commit).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cleanup_addresses.h"
#include "cleanup_settings.h"
#include "util/ipc/mail_proto.h"
#include "util/message/content_action.h"
#include "util/message/message_parser.h"
#include "util/queue/queue_file.h"

namespace postern::cleanup {

// Envelope attribute a local submitter (pickup) passes with the submitting user's uid,
// for the Received: header; it is not written to the queue file.
inline constexpr std::string_view kSubmitUidAttr = "submit_uid";

class CleanupMessage : public message::MessageSink {
public:
    CleanupMessage(const Settings& settings, AddressRewriter& rewriter, long flags,
                   queue::QueueFileWriter file);

    const std::string& queue_id() const { return file_.id(); }
    queue::QueueFileWriter& file() { return file_; }

    void envelope(const ipc::mail::CleanupEnvelope& env);
    void content(std::string_view data);
    // kCleanupHold / kCleanupDiscard that the client decided after the open (CleanupEnd).
    void late_flags(long flags);
    // Ends the content and writes the queue file (not yet committed) unless the message
    // was refused or discarded.
    void finish();

    long status() const { return errs_; }
    std::string reason() const;
    bool discarded() const { return discard_; }
    bool held() const { return hold_; }
    bool has_envelope() const { return has_envelope_; }
    bool content_started() const { return content_started_; }

    // After finish(): turns a refusal of a kCleanupBounce submission (content, size or hop
    // limit) into a queued message whose recipients are all done, with one bounce-log
    // entry each (cleanup_bounce.cc); false when the refusal stands. The entries must be
    // on disk before the queue file is committed; log_bounces() logs status=bounced.
    bool bounce_instead();
    const std::vector<ipc::mail::DeliveryLogEntry>& bounce_entries() const { return bounce_entries_; }
    void log_bounces() const;
    // The bounce log could not be written: a temporary refusal after all.
    void fail_write() { fail(ipc::mail::kCleanupStatWrite, ""); }

    // MessageSink
    void header(std::string& header) override;
    void headers_done() override;
    void part_header(std::string& header, message::HeaderClass cls) override;
    void body_line(std::string_view line) override;

private:
    enum class Verdict { Keep, Drop, Replace };

    bool out_ok() const { return errs_ == 0; }
    void out(std::string_view line);
    void add_recipient(const std::string& address, const std::string& orig, const std::string& orcpt,
                       long notify, bool bcc = false);
    void add_blind_copies();
    void note_8bit_encoding(const std::string& h, const message::HeaderInfo* info);
    void rewrite_header(std::string& header, const message::HeaderInfo& info);
    Verdict check(const MapList& maps, std::string_view context, std::string& text);
    Verdict act(std::string_view context, std::string_view content, const std::string& value,
                const std::string& map_class, std::string& replacement);
    void log_action(std::string_view action, std::string_view context, std::string_view content,
                    std::string_view text) const;
    void add_missing_headers();
    void check_mime_nesting();
    void fail(long status, std::string reason);
    void take_address_error();
    void write_file();
    long smtputf8_flags() const;
    std::string attribute(std::string_view name) const;

    const Settings& settings_;
    AddressRewriter& rewriter_;
    long flags_;
    queue::QueueFileWriter file_;
    std::unique_ptr<message::MessageParser> parser_;

    ipc::mail::CleanupEnvelope env_;
    bool has_envelope_ = false;
    bool content_started_ = false;
    std::string rewrite_context_ = "local";
    std::string header_context_;  // "" = no header address rewriting
    std::string sender_;
    std::string last_recipient_;  // for the log records
    std::vector<queue::Recipient> recipients_;
    std::unordered_set<std::string> seen_recipients_;
    std::vector<std::string> header_rcpt_, resent_rcpt_;  // sendmail -t
    std::vector<std::string> bcc_;  // sender_bcc_maps / recipient_bcc_maps results

    std::string out_;  // processed content, one "\n"-terminated line each
    uint64_t headers_seen_ = 0;  // bit per message::HeaderType
    bool resent_ = false;
    bool utf8_headers_ = false;  // a header with non-ASCII text (SMTPUTF8 detection)
    bool eight_bit_declared_ = false;  // detect_8bit_encoding_header found 8bit/binary
    long hops_ = 0;
    size_t size_ = 0;
    size_t body_offset_ = 0;
    bool filtering_ = false;
    std::string filter_, redirect_;
    bool hold_ = false, discard_ = false;
    long errs_ = 0;
    std::string reason_;
    AddressError address_error_;
    std::vector<ipc::mail::DeliveryLogEntry> bounce_entries_;
};

}  // namespace postern::cleanup
