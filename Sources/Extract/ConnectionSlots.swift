import Flows

/// The parser states of the connections a tracker follows, addressed by the handle their flow entry keeps
/// (`ApplicationHandles`: index + 1), so a segment reaches its state without a hash lookup. Bounded; freed
/// slots are reused. Each element remembers its flow key, and a lookup checks it, so a stale handle can never
/// reach another connection's state.
package struct ConnectionSlots<Element: AnyObject> {
    private var slots: [Element?] = []
    private var free: [Int32] = []
    package let capacity: Int
    private(set) var count = 0

    package init(capacity: Int) { self.capacity = capacity }

    /// Stores `element`; its handle, or nil when `capacity` connections are already followed.
    package mutating func insert(_ element: Element) -> Int32? {
        if let i = free.popLast() {
            slots[Int(i)] = element
            count += 1
            return i + 1
        }
        guard slots.count < capacity else { return nil }
        slots.append(element)
        count += 1
        return Int32(slots.count)
    }

    @inline(__always)
    package subscript(handle: Int32) -> Element? {
        handle > 0 && Int(handle) <= slots.count ? slots[Int(handle) - 1] : nil
    }

    /// Frees the slot of `handle` and returns what it held.
    package mutating func remove(_ handle: Int32) -> Element? {
        guard let element = self[handle] else { return nil }
        slots[Int(handle) - 1] = nil
        free.append(handle - 1)
        count -= 1
        return element
    }

    /// Handles of every element held.
    package var handles: [Int32] { slots.indices.compactMap { slots[$0] == nil ? nil : Int32($0 + 1) } }
}
