// Fuzz target: the queue file reader must never crash on any bytes, must classify every
// failure, and what it accepts must survive a rewrite through the writer's encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/queue/queue_file.h"
#include "util/queue/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::queue;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    FileState state = FileState::Ok;
    auto parsed = parse_queue_file(in, &state);
    if (!parsed.ok()) {
        if (state == FileState::Ok) __builtin_trap();  // every failure has a kind
        return 0;
    }
    // Re-encode every record: the same bytes must come back (the layout is canonical
    // for what we accept only when lengths are minimally encoded, so compare records).
    RecordReader a(memory_source(in));
    std::string again;
    while (true) {
        auto r = a.next();
        if (!r.ok()) __builtin_trap();  // parse_queue_file accepted these bytes
        if (!*r) break;
        append_record(again, (*r)->type, (*r)->data);
    }
    auto reparsed = parse_queue_file(again);
    if (!reparsed.ok()) __builtin_trap();
    if (reparsed->lines != parsed->lines) __builtin_trap();
    if (reparsed->envelope.recipients.size() != parsed->envelope.recipients.size()) __builtin_trap();
    return 0;
}
