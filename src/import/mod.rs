//! Bulk import of customer records from CSV.

mod card_numbers;
mod csv_import;
mod field_names;
mod limit;
mod missing;
mod money;
mod rows;
mod sep_line;

pub use csv_import::{holds_contact_data, import_csv, ImportOptions, ImportReport, Rejected};
pub use limit::MAX_LINE_BYTES;
pub use missing::is_missing_marker;
