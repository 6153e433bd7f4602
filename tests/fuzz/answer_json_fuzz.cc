// Command answers: what a car publishes on fleet/{car}/acks, read the way the twin stage and the sink read
// them (src/codec/answers.h read_answer: size, ids, the car of the key, known settings only). An accepted
// answer keeps every promise read_answer makes, and writing it and reading it again gives the same answer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/answers.h"
#include "codec/json.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kKeyCar = "car-00001";
  core::CommandAck ack;
  codec::Refusal why;
  if (!codec::read_answer(json, kKeyCar, ack, why)) {
    FUZZ_CHECK(!why.reason.empty(), "a refusal without a reason");
    return 0;
  }
  FUZZ_CHECK(size <= codec::kMaxAnswerBytes, "accepted " + std::to_string(size) + " bytes");
  FUZZ_CHECK(ack.car == kKeyCar, "accepted an answer of car " + ack.car);
  FUZZ_CHECK(codec::valid_command_id(ack.id), "accepted command id " + ack.id);
  FUZZ_CHECK(ack.reason.size() <= codec::kMaxAnswerReasonLength, "accepted a long reason");
  for (const auto& [name, value] : ack.reported) {
    FUZZ_CHECK(codec::safe_field_name(name), "accepted setting name " + name);
  }
  const std::string once = codec::command_ack_to_json(ack);
  core::CommandAck back;
  FUZZ_CHECK(codec::read_answer(once, kKeyCar, back, why), once + ": " + why.detail);
  const std::string twice = codec::command_ack_to_json(back);
  FUZZ_CHECK(twice == once, once + " -> " + twice);
  return 0;
}
