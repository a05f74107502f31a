// Fuzz target: the IPC attribute decoder must never crash, and whatever it accepts must
// re-encode to records it decodes the same way.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/ipc/attr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::ipc;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    AttrDecoder d;
    size_t half = size / 2;
    (void)d.feed(in.substr(0, half));
    (void)d.feed(in.substr(half));
    while (auto rec = d.next()) {
        std::string wire = encode_record(*rec);
        AttrDecoder again;
        if (!again.feed(wire).ok()) __builtin_trap();
        auto back = again.next();
        if (!back || back->attrs().size() != rec->attrs().size()) __builtin_trap();
        for (size_t i = 0; i < rec->attrs().size(); ++i)
            if (back->attrs()[i].value != rec->attrs()[i].value) __builtin_trap();
    }
    return 0;
}
