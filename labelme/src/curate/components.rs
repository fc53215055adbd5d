//! 8-connected components of a class-index mask, one set per class.
//!
//! A defect is a connected blob of one class: two touching blobs of different classes are two
//! instances, and 0 (background) and 255 (ignore) are never instances. Two-pass labelling with
//! union-find over the raw index buffer: no image-type conversion, one allocation per mask.

use crate::dataset::{Instance, IGNORE_INDEX};

/// Components of a mask: a label per pixel plus the components themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// Per pixel, row-major: 0 for background/ignore, `k` for `components[k - 1]`.
    pub labels: Vec<u32>,
    /// Components in raster order of their first pixel.
    pub components: Vec<Instance>,
}

/// Whether a mask value is a foreground class (not background, not ignore).
pub fn is_foreground(v: u8) -> bool {
    v != 0 && v != IGNORE_INDEX
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        // path halving keeps the trees flat without recursion
        let p = parent[x as usize];
        parent[x as usize] = parent[p as usize];
        x = p;
    }
    x
}

/// Label the 8-connected components of every foreground class of a `width × height` mask.
pub fn label(mask: &[u8], width: u32, height: u32) -> Labels {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(mask.len(), w * h, "mask buffer size");
    let mut lab = vec![0u32; w * h];
    let mut parent: Vec<u32> = vec![0];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let v = mask[i];
            if !is_foreground(v) {
                continue;
            }
            let mut l = 0u32;
            let join = |j: usize, l: &mut u32, parent: &mut Vec<u32>| {
                if mask[j] != v {
                    return;
                }
                let m = lab[j];
                if *l == 0 {
                    *l = m;
                } else if m != *l {
                    let (a, b) = (find(parent, *l), find(parent, m));
                    // the smaller label is the older one: keep it as root so that final ids
                    // follow the raster order of each component's first pixel
                    if a < b {
                        parent[b as usize] = a;
                    } else if b < a {
                        parent[a as usize] = b;
                    }
                }
            };
            if x > 0 {
                join(i - 1, &mut l, &mut parent);
            }
            if y > 0 {
                let up = i - w;
                if x > 0 {
                    join(up - 1, &mut l, &mut parent);
                }
                join(up, &mut l, &mut parent);
                if x + 1 < w {
                    join(up + 1, &mut l, &mut parent);
                }
            }
            if l == 0 {
                l = parent.len() as u32;
                parent.push(l);
            }
            lab[i] = l;
        }
    }
    // Final ids: roots in increasing order (= raster order of first pixel), dense from 1.
    let mut final_id = vec![0u32; parent.len()];
    let mut next = 0u32;
    for l in 1..parent.len() as u32 {
        let r = find(&mut parent, l);
        if r == l {
            next += 1;
            final_id[l as usize] = next;
        } else {
            final_id[l as usize] = final_id[r as usize];
        }
    }
    let mut comps: Vec<(u32, u64, [u32; 4])> =
        vec![(0, 0, [u32::MAX, u32::MAX, 0, 0]); next as usize];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if lab[i] == 0 {
                continue;
            }
            let id = final_id[lab[i] as usize];
            lab[i] = id;
            let c = &mut comps[id as usize - 1];
            c.0 = mask[i] as u32;
            c.1 += 1;
            let (x, y) = (x as u32, y as u32);
            c.2[0] = c.2[0].min(x);
            c.2[1] = c.2[1].min(y);
            c.2[2] = c.2[2].max(x);
            c.2[3] = c.2[3].max(y);
        }
    }
    let components = comps
        .into_iter()
        .map(|(class, area, [x0, y0, x1, y1])| Instance {
            class,
            area,
            bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
        })
        .collect();
    Labels {
        labels: lab,
        components,
    }
}

/// The instances (8-connected components per class) of a mask, as `dataset.json` lists them
/// (labelled over runs, [`crate::runs`], which is faster than [`label`] and gives the same).
pub fn instances(mask: &[u8], width: u32, height: u32) -> Vec<Instance> {
    crate::runs::counts_and_instances(mask, width, height).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rows: &[&str]) -> (Vec<u8>, u32, u32) {
        let h = rows.len() as u32;
        let w = rows[0].len() as u32;
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| if b == b'x' { 255 } else { b - b'0' }))
            .collect();
        (data, w, h)
    }

    #[test]
    fn diagonal_touch_is_one_component_and_classes_stay_apart() {
        let (m, w, h) = parse(&["1000", "0100", "0022", "x012"]);
        let l = label(&m, w, h);
        assert_eq!(
            l.components,
            vec![
                Instance {
                    class: 1,
                    area: 2,
                    bbox: [0, 0, 2, 2]
                },
                Instance {
                    class: 2,
                    area: 3,
                    bbox: [2, 2, 2, 2]
                },
                Instance {
                    class: 1,
                    area: 1,
                    bbox: [2, 3, 1, 1]
                },
            ]
        );
        assert_eq!(l.labels[15 - 1], 3);
        assert_eq!(l.labels[12], 0, "ignore is not a component");
    }

    #[test]
    fn u_shape_merges_late() {
        // the two arms get different provisional labels and meet at the bottom
        let (m, w, h) = parse(&["1001", "1001", "1111", "0000", "1010"]);
        let l = label(&m, w, h);
        assert_eq!(l.components.len(), 3);
        assert_eq!(
            l.components[0],
            Instance {
                class: 1,
                area: 8,
                bbox: [0, 0, 4, 3]
            }
        );
        assert!(l.labels[..12].iter().all(|&v| v == 0 || v == 1));
    }

    #[test]
    fn anti_diagonal_chain_via_up_right() {
        let (m, w, h) = parse(&["0001", "0010", "0100", "1000"]);
        assert_eq!(instances(&m, w, h).len(), 1);
    }
}
