"""The face engine shared by server (enrollment) and terminals (matching): detect, align, embed, gate, search.

Nothing here keeps an image: photos and frames are arrays that live for one call.
"""
