// The address chain of cleanup(8): trivial-rewrite's "rewrite" (append_at_myorigin and
// friends, in the local or remote context), then sender_/recipient_canonical_maps and
// canonical_maps by canonical_classes, masquerade_domains by masquerade_classes, and for
// envelope recipients the virtual_alias_maps expansion.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cleanup_settings.h"
#include "util/base/result.h"
#include "util/ipc/rewrite_client.h"

namespace postern::cleanup {

// Why an address could not be processed: the message is deferred with this status.
struct AddressError {
    long status = 0;     // ipc::mail::kCleanupStat*
    std::string reason;  // "4.3.0 ..."
    std::string warning; // logged once, after "ID: "
};

class AddressRewriter {
public:
    AddressRewriter(const Settings& settings, std::unique_ptr<ipc::mail::RewriteClient> client);

    // `context` "local" or "remote"; `map_ok` applies canonical maps and masquerading.
    // `cls` is one of kEnvelopeSender, kEnvelopeRecipient, kHeaderSender, kHeaderRecipient.
    std::string rewrite(std::string_view address, std::string_view context, unsigned cls,
                        bool map_ok, AddressError& error);
    // virtual_alias_maps expansion of one envelope recipient (the address itself when
    // nothing matches or the maps are empty).
    std::vector<std::string> expand(std::string_view address, AddressError& error);
    // sender_bcc_maps / recipient_bcc_maps: the blind copy address for `address`, "" if none.
    std::string bcc_for(const MapList& maps, std::string_view address, AddressError& error);

private:
    std::string canonicalize(std::string address, unsigned cls, AddressError& error);
    std::string masquerade(const std::string& address) const;

    const Settings& settings_;
    std::unique_ptr<ipc::mail::RewriteClient> client_;
    message::AddressMapper canonical_, sender_canonical_, recipient_canonical_, virtual_;
};

}  // namespace postern::cleanup
