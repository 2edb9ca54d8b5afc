//! The code's parameters: how many dimensions, how long each further axis is, and how
//! many bytes of the grid are data. They are bound into the DataRoot, so two parties that
//! agree on a root agree on the layout, and padding is never ambiguous.

use serde::{Deserialize, Serialize};

/// Field elements in one row before extension (an EIP-4844 blob).
pub const ROW_ELEMENTS: usize = 4096;
/// Field elements in one extended row.
pub const EXTENDED_ROW_ELEMENTS: usize = 2 * ROW_ELEMENTS;
/// Field elements in one cell (EIP-7594's `FIELD_ELEMENTS_PER_CELL`).
pub const CELL_ELEMENTS: usize = 64;
/// Cells in one extended row (EIP-7594's `CELLS_PER_EXT_BLOB`).
pub const CELLS_PER_ROW: usize = EXTENDED_ROW_ELEMENTS / CELL_ELEMENTS;
/// Cells of a row that carry its original data; the rest are its extension.
pub const ORIGINAL_CELLS_PER_ROW: usize = CELLS_PER_ROW / 2;
/// Serialized size of a cell: 64 big-endian 32-byte scalars.
pub const BYTES_PER_CELL: usize = CELL_ELEMENTS * 32;
/// Data bytes packed into one field element (always below the modulus).
pub const BYTES_PER_ELEMENT: usize = 31;
/// Data bytes one original row holds.
pub const ROW_DATA_BYTES: usize = ROW_ELEMENTS * BYTES_PER_ELEMENT;
/// Largest number of original rows a grid may have: 124 MiB of data, whose extended grid
/// (4096 rows for d = 3) still fits in memory to reconstruct. Larger data is split.
pub const MAX_ORIGINAL_ROWS: u32 = 1024;

/// Why a set of parameters is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Only 1, 2 and 3 dimensions are supported.
    #[error("{0} dimensions are not supported (use 1, 2 or 3)")]
    Dimensions(u8),
    /// An axis length is zero or not a power of two, or an unused axis is not 1.
    #[error("axis {axis} has length {len}; further axes must be powers of two and unused axes 1")]
    AxisLength {
        /// The axis (1 or 2).
        axis: usize,
        /// Its original length.
        len: u32,
    },
    /// The grid would have more rows than [`MAX_ORIGINAL_ROWS`].
    #[error("{rows} original rows is more than the limit of {MAX_ORIGINAL_ROWS}")]
    TooManyRows {
        /// Rows the grid would need.
        rows: u64,
    },
    /// The data does not fit the grid.
    #[error("{data_len} bytes do not fit {dims}-dimensional parameters holding {capacity} bytes")]
    DataTooLarge {
        /// Bytes of data.
        data_len: u64,
        /// The dimension count.
        dims: u8,
        /// Bytes the grid holds.
        capacity: u64,
    },
}

/// Coordinates of one cell in the extended grid.
///
/// `row` numbers the extended rows in row-major order over the further axes (axis 1
/// slowest); `column` is the EIP-7594 cell index within that row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Coord {
    /// Extended row, `0..params.extended_rows()`.
    pub row: u32,
    /// Cell within the row, `0..CELLS_PER_ROW`.
    pub column: u16,
}

/// The layout of one encoded payload.
///
/// Axis 0 is the row (64 original cells, extended to 128). Axes 1 and 2 are powers of
/// two, extended 2x each; an axis beyond `dims` has length 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeParams {
    /// Number of dimensions, 1 to 3.
    pub dims: u8,
    /// Original lengths of axes 1 and 2.
    pub axes: [u32; 2],
    /// Exact number of data bytes; everything after them in the grid is zero padding.
    pub data_len: u64,
}

impl CodeParams {
    /// The smallest grid of `dims` dimensions that holds `data_len` bytes.
    ///
    /// One dimension holds a single row (126,976 bytes); more dimensions grow the further
    /// axes in powers of two, keeping axis 1 at least as long as axis 2.
    pub fn for_data(dims: u8, data_len: u64) -> Result<CodeParams, ParamsError> {
        if !(1..=3).contains(&dims) {
            return Err(ParamsError::Dimensions(dims));
        }
        let rows = data_len.div_ceil(ROW_DATA_BYTES as u64).max(1);
        if rows > u64::from(MAX_ORIGINAL_ROWS) {
            return Err(ParamsError::TooManyRows { rows });
        }
        let rows = (rows as u32).next_power_of_two();
        let log = rows.trailing_zeros();
        let axes = match dims {
            1 => [1, 1],
            2 => [rows, 1],
            _ => [1 << log.div_ceil(2), 1 << (log / 2)],
        };
        let params = CodeParams {
            dims,
            axes,
            data_len,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks every invariant the rest of the crate relies on.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if !(1..=3).contains(&self.dims) {
            return Err(ParamsError::Dimensions(self.dims));
        }
        for (i, &len) in self.axes.iter().enumerate() {
            let used = i + 1 < usize::from(self.dims);
            if len == 0 || !len.is_power_of_two() || (!used && len != 1) {
                return Err(ParamsError::AxisLength { axis: i + 1, len });
            }
        }
        let rows = u64::from(self.axes[0]) * u64::from(self.axes[1]);
        if rows > u64::from(MAX_ORIGINAL_ROWS) {
            return Err(ParamsError::TooManyRows { rows });
        }
        if self.data_len > self.capacity() {
            return Err(ParamsError::DataTooLarge {
                data_len: self.data_len,
                dims: self.dims,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }

    /// A fixed 17-byte encoding (dims, axes big-endian, data length big-endian), hashed
    /// into the DataRoot.
    pub fn to_bytes(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0] = self.dims;
        out[1..5].copy_from_slice(&self.axes[0].to_be_bytes());
        out[5..9].copy_from_slice(&self.axes[1].to_be_bytes());
        out[9..17].copy_from_slice(&self.data_len.to_be_bytes());
        out
    }

    /// Original rows in the grid.
    pub fn original_rows(&self) -> usize {
        self.axes[0] as usize * self.axes[1] as usize
    }

    /// Rows after extending every further axis 2x.
    pub fn extended_rows(&self) -> usize {
        self.original_rows() << (self.dims - 1)
    }

    /// Bytes of data the grid can hold.
    pub fn capacity(&self) -> u64 {
        self.original_rows() as u64 * ROW_DATA_BYTES as u64
    }

    /// Cells in the extended grid.
    pub fn total_cells(&self) -> u64 {
        self.extended_rows() as u64 * CELLS_PER_ROW as u64
    }

    /// Original (unextended) length of axis `axis` (0 is the row, counted in cells).
    pub fn original_len(&self, axis: usize) -> usize {
        match axis {
            0 => ORIGINAL_CELLS_PER_ROW,
            a if a < usize::from(self.dims) => self.axes[a - 1] as usize,
            _ => 1,
        }
    }

    /// Extended length of axis `axis`: twice the original for every used axis.
    pub fn extended_len(&self, axis: usize) -> usize {
        if axis < usize::from(self.dims) {
            2 * self.original_len(axis)
        } else {
            1
        }
    }

    /// Position of extended row `row` along axes 1 and 2.
    pub fn row_position(&self, row: usize) -> [usize; 2] {
        let len2 = self.extended_len(2);
        [row / len2, row % len2]
    }

    /// Extended row at position `pos` along axes 1 and 2.
    pub fn row_at(&self, pos: [usize; 2]) -> usize {
        pos[0] * self.extended_len(2) + pos[1]
    }

    /// Whether extended row `row` is an original row (its position is original on every axis).
    pub fn is_original_row(&self, row: usize) -> bool {
        let [a, b] = self.row_position(row);
        a < self.original_len(1) && b < self.original_len(2)
    }

    /// Index of an original row in data order, given its extended row number.
    pub fn data_row_index(&self, row: usize) -> Option<usize> {
        let [a, b] = self.row_position(row);
        self.is_original_row(row)
            .then(|| a * self.original_len(2) + b)
    }

    /// Extended row of the original row holding data row `index` (data order).
    pub fn row_of_data_row(&self, index: usize) -> usize {
        let len2 = self.original_len(2);
        self.row_at([index / len2, index % len2])
    }

    /// Extended rows of the original rows holding bytes `offset..offset + len` of the
    /// data, in data order; `None` if the range is not inside the data.
    pub fn rows_holding(&self, offset: u64, len: u64) -> Option<Vec<u32>> {
        let end = offset.checked_add(len)?;
        if end > self.data_len {
            return None;
        }
        let row_bytes = ROW_DATA_BYTES as u64;
        let (first, last) = (
            offset / row_bytes,
            end.div_ceil(row_bytes).max(offset / row_bytes + 1),
        );
        Some(
            (first..last)
                .map(|i| self.row_of_data_row(i as usize) as u32)
                .collect(),
        )
    }

    /// Whether `coord` lies inside the extended grid.
    pub fn contains(&self, coord: Coord) -> bool {
        (coord.row as usize) < self.extended_rows() && usize::from(coord.column) < CELLS_PER_ROW
    }

    /// Whether the cell at `coord` carries original data (not extension).
    pub fn is_original(&self, coord: Coord) -> bool {
        self.is_original_row(coord.row as usize)
            && usize::from(coord.column) < ORIGINAL_CELLS_PER_ROW
    }

    /// Smallest number of withheld cells that makes the data unrecoverable:
    /// `(k0+1)·(k1+1)·(k2+1)` over the used axes.
    pub fn min_unrecoverable_cells(&self) -> u64 {
        (0..usize::from(self.dims))
            .map(|axis| self.original_len(axis) as u64 + 1)
            .product()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_data() {
        let one = CodeParams::for_data(1, 0).expect("empty fits");
        assert_eq!((one.original_rows(), one.extended_rows()), (1, 1));
        assert!(CodeParams::for_data(1, ROW_DATA_BYTES as u64).is_ok());
        assert!(matches!(
            CodeParams::for_data(1, ROW_DATA_BYTES as u64 + 1),
            Err(ParamsError::DataTooLarge { .. })
        ));
        let two = CodeParams::for_data(2, 3 * ROW_DATA_BYTES as u64).expect("fits");
        assert_eq!(two.axes, [4, 1]);
        assert_eq!(two.extended_rows(), 8);
        assert_eq!(two.total_cells(), 8 * 128);
        assert_eq!(two.min_unrecoverable_cells(), 65 * 5);
        let three = CodeParams::for_data(3, 5 * ROW_DATA_BYTES as u64).expect("fits");
        assert_eq!(three.axes, [4, 2]);
        assert_eq!(three.extended_rows(), 32);
        assert_eq!(three.min_unrecoverable_cells(), 65 * 5 * 3);
        assert!(CodeParams::for_data(4, 1).is_err());
        assert!(CodeParams::for_data(2, u64::MAX).is_err());
    }

    #[test]
    fn invalid_parameters_are_named() {
        let bad = CodeParams {
            dims: 2,
            axes: [3, 1],
            data_len: 0,
        };
        assert_eq!(
            bad.validate(),
            Err(ParamsError::AxisLength { axis: 1, len: 3 })
        );
        let unused = CodeParams {
            dims: 2,
            axes: [2, 2],
            data_len: 0,
        };
        assert_eq!(
            unused.validate(),
            Err(ParamsError::AxisLength { axis: 2, len: 2 })
        );
    }

    #[test]
    fn row_positions_round_trip() {
        let p = CodeParams::for_data(3, 7 * ROW_DATA_BYTES as u64).expect("fits");
        let originals: Vec<_> = (0..p.extended_rows())
            .filter_map(|r| p.data_row_index(r))
            .collect();
        assert_eq!(originals, (0..p.original_rows()).collect::<Vec<_>>());
        for r in 0..p.extended_rows() {
            assert_eq!(p.row_at(p.row_position(r)), r);
        }
    }
}
