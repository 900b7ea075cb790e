// CompareToEstimate (include/vramfit/measured.h): measured engine figures
// against the estimate's components of the same name and device.
#include "vramfit/measured.h"

namespace vramfit {

namespace {

const DeviceEstimate* DeviceOf(const Estimate& e, const std::string& device) {
  for (const DeviceEstimate& d : e.devices) {
    if (d.name == device) return &d;
  }
  return nullptr;
}

// The device totals a PyTorch or nvidia-smi measurement compares with
// (DESIGN.md: allocated_peak_bytes, reserved_peak_bytes, total_bytes).
std::optional<std::optional<Bytes>> DeviceTotal(const Estimate& e, const CheckRow& r) {
  const DeviceEstimate* d = DeviceOf(e, r.device);
  if (d == nullptr) return std::nullopt;
  if (r.component == "allocated_peak") return std::optional<std::optional<Bytes>>(d->allocated_peak);
  if (r.component == "reserved_peak") return std::optional<std::optional<Bytes>>(d->reserved_peak);
  if (r.component == "total") return std::optional<std::optional<Bytes>>(std::optional<Bytes>(d->total));
  return std::nullopt;
}

const std::vector<Component>* ComponentsOf(const Estimate& e, const std::string& device) {
  if (device == "host") return &e.host;
  const DeviceEstimate* d = DeviceOf(e, device);
  return d == nullptr ? nullptr : &d->components;
}

}  // namespace

std::vector<CheckRow> CompareToEstimate(const std::vector<Measured>& figures, const Estimate* estimate) {
  std::vector<CheckRow> rows;
  std::vector<bool> counterpart;
  for (const Measured& m : figures) {
    CheckRow* row = nullptr;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].device == m.device && rows[i].component == m.component) row = &rows[i];
    }
    if (row == nullptr) {
      rows.push_back(CheckRow{m.device, m.component, m.has_counterpart ? m.component : std::string(), {}, {},
                              Bytes(0), Bytes(0), std::nullopt, std::nullopt});
      counterpart.push_back(m.has_counterpart);
      row = &rows.back();
    }
    if (!row->engine_names.empty()) row->engine_names += "; ";
    row->engine_names += m.engine_device.empty() ? m.engine_name : m.engine_device + " " + m.engine_name;
    if (!row->printed.empty()) row->printed += " + ";
    row->printed += m.printed;
    row->measured += m.bytes;
    row->half_ulp += m.half_ulp;
  }
  if (estimate == nullptr) return rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    CheckRow& r = rows[i];
    if (!counterpart[i]) continue;
    if (r.component == "allocated_peak" || r.component == "reserved_peak" || r.component == "total") {
      auto t = DeviceTotal(*estimate, r);
      if (!t || !*t) continue;  // no such device, or a runtime without that total
      r.estimated = **t;
      if (r.measured.value() != 0) {
        r.error = static_cast<double>(r.estimated->value() - r.measured.value()) / static_cast<double>(r.measured.value());
      }
      continue;
    }
    // A device the estimate does not have cannot be compared; a component
    // it does not hold on a device it has is an estimate of 0 bytes there.
    const std::vector<Component>* comps = ComponentsOf(*estimate, r.device);
    if (comps == nullptr) continue;
    Bytes est(0);
    if (const Component* c = Find(*comps, r.component)) est = c->bytes;
    r.estimated = est;
    if (r.measured.value() != 0) {
      r.error = static_cast<double>(est.value() - r.measured.value()) / static_cast<double>(r.measured.value());
    }
  }
  return rows;
}

}  // namespace vramfit
