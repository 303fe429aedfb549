// The datasets shipped in examples/data/, read with the train module's loaders: the row
// counts, labels and contents their README promises.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace xgrad;

namespace {
const std::string kData = XGRAD_EXAMPLES_DATA_DIR "/";
}  // namespace

TEST_CASE("suthaharan sensor data: 18 914 readings from 4 motes; mote 1's anomalies are labelled") {
  const train::Table t = train::read_csv(kData + "suthaharan_sensor.csv");
  CHECK(t.columns == std::vector<std::string>{"reading", "mote_id", "indoor", "humidity", "temperature", "label"});
  CHECK(t.size() == 18914);
  const auto motes = t.numbers("mote_id"), temperature = t.numbers("temperature"), label = t.numbers("label");
  CHECK(std::count(motes.begin(), motes.end(), 1.0) == 4417);
  CHECK(std::count(motes.begin(), motes.end(), 2.0) == 4417);
  CHECK(std::count(motes.begin(), motes.end(), 3.0) == 5039);
  CHECK(std::count(motes.begin(), motes.end(), 4.0) == 5041);
  // Unlabelled readings are in a room's range (22.7–37.3 °C); the 56.56 °C spike is labelled.
  std::size_t anomalies = 0, out_of_range = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (label[i] != 0) ++anomalies;
    else if (!(temperature[i] > 22 && temperature[i] < 38)) ++out_of_range;
  }
  CHECK(anomalies == 149);
  CHECK(out_of_range == 0);
}
